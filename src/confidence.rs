//! Confidence intervals over repeated runs: the mean of one value measured
//! with several seeds, and how far the true mean may lie from it.
//!
//! Intervals use Student's t distribution with `n - 1` degrees of freedom,
//! which fits a handful of runs better than the normal approximation. The
//! seeds of a check or a diff are few (often 5 to 30), so this matters:
//! with 5 runs the 95% multiplier is 2.78, not 1.96. Which seeds are run,
//! and what a verdict means, is left to `check` and `diff`.

/// The mean of `n` values and a two-sided confidence interval around it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (divided by `n - 1`); 0 for one value.
    pub std_dev: f64,
    /// Half the width of the interval; `None` for fewer than two values,
    /// where no interval can be computed.
    pub half_width: Option<f64>,
    pub confidence: f64,
}

impl Interval {
    /// Lower end of the interval; the mean itself for one value.
    pub fn low(&self) -> f64 {
        self.mean - self.half_width.unwrap_or(0.0)
    }

    /// Upper end of the interval; the mean itself for one value.
    pub fn high(&self) -> f64 {
        self.mean + self.half_width.unwrap_or(0.0)
    }

    /// Returns whether the whole interval lies strictly above or below zero.
    pub fn excludes_zero(&self) -> bool {
        self.half_width.is_some() && (self.low() > 0.0 || self.high() < 0.0)
    }
}

/// Computes the mean of `values` with its two-sided `confidence` interval
/// (for example 0.95). `values` must not be empty, and `confidence` lies
/// in (0, 1).
pub fn mean_interval(values: &[f64], confidence: f64) -> Interval {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return Interval {
            n,
            mean,
            std_dev: 0.0,
            half_width: None,
            confidence,
        };
    }
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    let std_dev = (squares / (n - 1) as f64).sqrt();
    let t = student_t_quantile((1.0 + confidence) / 2.0, (n - 1) as f64);
    Interval {
        n,
        mean,
        std_dev,
        half_width: Some(t * std_dev / (n as f64).sqrt()),
        confidence,
    }
}

/// The `p` quantile (0.5 <= p < 1) of Student's t distribution with `df`
/// degrees of freedom, found by bisection on the distribution function to
/// about 1e-12.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p <= 0.5 {
        return 0.0;
    }
    let mut high = 1.0;
    while student_t_cdf(high, df) < p && high < 1e12 {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let middle = (low + high) / 2.0;
        if student_t_cdf(middle, df) < p {
            low = middle;
        } else {
            high = middle;
        }
        if high - low < 1e-12 * high.max(1.0) {
            break;
        }
    }
    (low + high) / 2.0
}

/// P(T <= t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    // The tail beyond |t| is half the regularized incomplete beta function
    // at df / (df + t^2) with parameters (df / 2, 1 / 2).
    let tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction evaluated with the modified Lentz method.
fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2);
    // above that the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) is used.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    let log_front = a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b);
    log_front.exp() * beta_fraction(x, a, b) / a
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut result = d;
    for m in 1..500 {
        let m = f64::from(m);
        // Even step of the fraction.
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + even * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        result *= d * c;
        // Odd step.
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + odd * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let step = d * c;
        result *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    result
}

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln Γ(x) for x > 0, by the Lanczos approximation (g = 7, nine terms),
/// accurate to about 15 significant digits.
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += coefficient / (x + index as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(found: f64, expected: f64, tolerance: f64) -> bool {
        (found - expected).abs() <= tolerance
    }

    #[test]
    fn t_quantiles_match_published_tables() {
        // Two-sided 95% and 99% critical values of Student's t.
        let cases = [
            (0.975, 1.0, 12.706_205),
            (0.975, 4.0, 2.776_445),
            (0.975, 9.0, 2.262_157),
            (0.975, 29.0, 2.045_230),
            (0.995, 9.0, 3.249_836),
            (0.95, 4.0, 2.131_847),
            (0.975, 1000.0, 1.962_339),
        ];
        for (p, df, expected) in cases {
            let found = student_t_quantile(p, df);
            assert!(close(found, expected, 1e-5), "p {p} df {df}: {found}");
        }
    }

    #[test]
    fn t_distribution_is_symmetric() {
        assert!(close(student_t_cdf(0.0, 5.0), 0.5, 1e-12));
        let sum = student_t_cdf(1.3, 7.0) + student_t_cdf(-1.3, 7.0);
        assert!(close(sum, 1.0, 1e-12));
    }

    #[test]
    fn interval_of_identical_values_is_a_point() {
        let interval = mean_interval(&[3.0, 3.0, 3.0], 0.95);
        assert_eq!(interval.mean, 3.0);
        assert_eq!(interval.low(), 3.0);
        assert_eq!(interval.high(), 3.0);
        assert!(interval.excludes_zero());
    }

    #[test]
    fn interval_uses_the_t_multiplier() {
        let interval = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        assert_eq!(interval.mean, 3.0);
        let std_dev = 2.5f64.sqrt();
        assert!(close(interval.std_dev, std_dev, 1e-12));
        let half = 2.776_445 * std_dev / 5f64.sqrt();
        assert!(close(interval.half_width.unwrap_or(0.0), half, 1e-5));
    }

    #[test]
    fn one_value_has_no_interval() {
        let interval = mean_interval(&[7.0], 0.95);
        assert_eq!(interval.half_width, None);
        assert_eq!(interval.high(), 7.0);
        assert!(!interval.excludes_zero());
    }
}
