//! Rate limits as Envoy Gateway v1.9 translates them: a policy's
//! `rateLimit` becomes an intermediate list of named rules, then, per Envoy
//! route, the local rate limit filter's descriptors and token buckets or
//! the global filter's actions and the rate limit service's limits.
//!
//! The intermediate rules carry names (`<ns>/<policy>/rule/<index>`) so a
//! `StrategicMerge` can union a Gateway policy's rules with a route
//! policy's before the Envoy configuration is built, as Envoy Gateway does.

use std::net::IpAddr;

use super::policy::{
    ClientSelector, Cost, MetadataKey, RateLimitRule, RateLimitSpec, SelectorKind,
};
use crate::gateway::{
    Cidr, DescriptorEntry, GlobalLimit, GlobalRateLimit, HeaderMatcher, HitsAddend,
    LocalDescriptor, LocalRateLimit, QueryParamMatcher, RateLimitAction, RateLimitActions,
    RateLimitUnit, Regex, StringMatch, TokenBucketSpec,
};
use crate::time::SimDuration;

/// A condition on a header, query parameter, method or path.
#[derive(Clone, Debug, PartialEq)]
pub struct IrMatch {
    pub name: String,
    pub kind: IrMatchKind,
    pub invert: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IrMatchKind {
    Exact(String),
    Prefix(String),
    Regex(String),
    /// One bucket (or counter) per distinct value.
    Distinct,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IrCidr {
    /// Canonical network text such as `192.168.0.0/16`.
    pub cidr: String,
    pub range: Cidr,
    pub distinct: bool,
    pub invert: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IrRule {
    /// `<policy-namespace>/<policy-name>/rule/<index in the policy's list>`.
    pub name: String,
    pub headers: Vec<IrMatch>,
    pub methods: Vec<IrMatch>,
    pub path: Option<IrMatch>,
    pub cidr: Option<IrCidr>,
    pub query_params: Vec<IrMatch>,
    pub requests: u32,
    pub unit: RateLimitUnit,
    pub from_metadata: Option<MetadataKey>,
    pub request_cost: Option<Cost>,
    pub response_cost: Option<Cost>,
    pub shared: bool,
    pub shadow_mode: bool,
}

impl IrRule {
    fn has_selectors(&self) -> bool {
        !self.headers.is_empty()
            || !self.methods.is_empty()
            || self.path.is_some()
            || self.cidr.is_some()
            || !self.query_params.is_empty()
    }
}

/// A local rate limit before it is attached to a route.
#[derive(Clone, Debug, PartialEq)]
pub struct IrLocal {
    /// The catch-all rule's limit, or 4294967295 per second without one.
    pub default_requests: u32,
    pub default_unit: RateLimitUnit,
    pub rules: Vec<IrRule>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct IrRateLimit {
    pub local: Option<IrLocal>,
    pub global: Option<Vec<IrRule>>,
}

/// Translates a policy's `rateLimit`; the error is Envoy Gateway's message
/// without the `RateLimit: ` prefix.
pub fn build_rate_limit(
    spec: &RateLimitSpec,
    policy_key: &str,
    global_enabled: bool,
) -> Result<IrRateLimit, String> {
    let mut result = IrRateLimit::default();
    match spec.kind.as_deref() {
        Some("Local") => result.local = Some(build_local(spec.local.as_deref(), policy_key)?),
        Some("Global") => {
            result.global = Some(build_global(
                spec.global.as_deref(),
                policy_key,
                global_enabled,
            )?)
        }
        _ => {
            if spec.local.is_some() {
                result.local = Some(build_local(spec.local.as_deref(), policy_key)?);
            }
            if spec.global.is_some() {
                result.global = Some(build_global(
                    spec.global.as_deref(),
                    policy_key,
                    global_enabled,
                )?);
            }
        }
    }
    Ok(result)
}

fn build_local(rules: Option<&[RateLimitRule]>, policy_key: &str) -> Result<IrLocal, String> {
    let rules = rules.ok_or("local configuration empty for rateLimit")?;
    let mut default = None;
    for rule in rules {
        if rule.selectors.is_empty() {
            if default.is_some() {
                return Err(
                    "local rateLimit can not have more than one rule without clientSelectors"
                        .to_string(),
                );
            }
            default = Some((rule.requests, rule.unit));
        }
    }
    let (default_requests, default_unit) = default.unwrap_or((u32::MAX, RateLimitUnit::Second));
    // Envoy requires each descriptor's fill interval to be a multiple of the
    // route bucket's, so Envoy Gateway checks every rule's unit against the
    // catch-all's.
    if rules
        .iter()
        .any(|rule| rule.unit.seconds() % default_unit.seconds() != 0)
    {
        return Err(
            "local rateLimit rule limit unit must be a multiple of the default limit unit"
                .to_string(),
        );
    }
    let mut ir_rules = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.selectors.is_empty() {
            continue;
        }
        ir_rules.push(build_rule(rule, &format!("{policy_key}/rule/{index}"))?);
    }
    Ok(IrLocal {
        default_requests,
        default_unit,
        rules: ir_rules,
    })
}

fn build_global(
    rules: Option<&[RateLimitRule]>,
    policy_key: &str,
    enabled: bool,
) -> Result<Vec<IrRule>, String> {
    let rules = rules.ok_or("global configuration empty for rateLimit")?;
    if !enabled {
        return Err(
            "enable Ratelimit in the EnvoyGateway config to configure global rateLimit".to_string(),
        );
    }
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| build_rule(rule, &format!("{policy_key}/rule/{index}")))
        .collect()
}

fn build_rule(rule: &RateLimitRule, name: &str) -> Result<IrRule, String> {
    let mut ir = IrRule {
        name: name.to_string(),
        headers: Vec::new(),
        methods: Vec::new(),
        path: None,
        cidr: None,
        query_params: Vec::new(),
        requests: rule.requests,
        unit: rule.unit,
        from_metadata: rule.from_metadata.clone(),
        request_cost: rule.request_cost.clone(),
        response_cost: rule.response_cost.clone(),
        shared: rule.shared.unwrap_or(false),
        shadow_mode: rule.shadow_mode,
    };
    // Several selector entries add up: headers, methods and query
    // parameters are appended, while a later `path` or `sourceCIDR`
    // replaces an earlier one (Envoy Gateway v1.9 behaves so).
    for selector in &rule.selectors {
        add_selector(&mut ir, selector)?;
    }
    Ok(ir)
}

fn add_selector(ir: &mut IrRule, selector: &ClientSelector) -> Result<(), String> {
    for header in &selector.headers {
        let kind = match (header.kind, &header.value) {
            (SelectorKind::Exact, Some(value)) => IrMatchKind::Exact(value.clone()),
            (SelectorKind::RegularExpression, Some(value)) => {
                validate_regex(value)?;
                IrMatchKind::Regex(value.clone())
            }
            (SelectorKind::Distinct, None) => {
                if header.invert {
                    return Err(
                        "unable to translate rateLimit.Invert is not applicable for \
                                distinct header match type"
                            .to_string(),
                    );
                }
                IrMatchKind::Distinct
            }
            _ => {
                return Err(
                    "unable to translate rateLimit. Either the header.Type is not valid \
                            or the header is missing a value"
                        .to_string(),
                );
            }
        };
        ir.headers.push(IrMatch {
            name: header.name.clone(),
            kind,
            invert: header.invert,
        });
    }
    for method in &selector.methods {
        ir.methods.push(IrMatch {
            name: ":method".to_string(),
            kind: IrMatchKind::Exact(method.value.clone()),
            invert: method.invert,
        });
    }
    if let Some(path) = &selector.path {
        let kind = match path.kind.as_str() {
            "Exact" => IrMatchKind::Exact(path.value.clone()),
            "RegularExpression" => {
                validate_regex(&path.value)?;
                IrMatchKind::Regex(path.value.clone())
            }
            _ if path.value == "/" => IrMatchKind::Prefix("/".to_string()),
            _ => IrMatchKind::Regex(path_separated_prefix_regex(&path.value)),
        };
        ir.path = Some(IrMatch {
            name: ":path".to_string(),
            kind,
            invert: path.invert,
        });
    }
    if let Some(cidr) = &selector.source_cidr {
        let (text, range) = parse_cidr(&cidr.value)
            .map_err(|error| format!("unable to translate rateLimit: {error}"))?;
        ir.cidr = Some(IrCidr {
            cidr: text,
            range,
            distinct: cidr.distinct,
            invert: cidr.invert,
        });
    }
    for param in &selector.query_params {
        let value = param.value.as_deref().filter(|v| !v.is_empty());
        let kind = match param.kind {
            SelectorKind::Exact => IrMatchKind::Exact(
                value
                    .ok_or("value is required for Exact query parameter match")?
                    .to_string(),
            ),
            SelectorKind::RegularExpression => {
                let value =
                    value.ok_or("value is required for RegularExpression query parameter match")?;
                validate_regex(value)?;
                IrMatchKind::Regex(value.to_string())
            }
            SelectorKind::Distinct => {
                if param.invert {
                    return Err(
                        "unable to translate rateLimit.Invert is not applicable for \
                                distinct query parameter match type"
                            .to_string(),
                    );
                }
                if param.value.is_some() {
                    return Err("unable to translate rateLimit.Value is not applicable for \
                                distinct query parameter match type"
                        .to_string());
                }
                IrMatchKind::Distinct
            }
        };
        ir.query_params.push(IrMatch {
            name: param.name.clone(),
            kind,
            invert: param.invert,
        });
    }
    Ok(())
}

/// Checks a regular expression as Envoy Gateway does before handing it to
/// Envoy's RE2; the error names the expression.
pub fn validate_regex(source: &str) -> Result<(), String> {
    Regex::new(source).map(|_| ()).map_err(|error| {
        let reason = error
            .to_string()
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        format!("regex \"{source}\" is invalid: error parsing regexp: {reason}")
    })
}

/// Builds the regular expression Envoy Gateway uses for a path prefix in a rate
/// limit selector: the prefix as a whole path segment, so `/api` matches
/// `/api`, `/api/x` and `/api?q`, but not `/apix`.
fn path_separated_prefix_regex(prefix: &str) -> String {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    format!("^{}(/.*|\\?.*|#.*|;.*|$)", regex::escape(trimmed))
}

/// Parses a CIDR as Go's `net.ParseCIDR` does: an address, `/`, and a
/// prefix length; returns the network in canonical form.
pub fn parse_cidr(text: &str) -> Result<(String, Cidr), String> {
    let invalid = || format!("invalid CIDR address: {text}");
    let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return Err(invalid());
    }
    let prefix_len: u8 = prefix.parse().map_err(|_| invalid())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(invalid());
    }
    let network = match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = if prefix_len == 0 {
                0
            } else {
                u32::MAX << (32 - prefix_len)
            };
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if prefix_len == 0 {
                0
            } else {
                u128::MAX << (128 - prefix_len)
            };
            IpAddr::V6((bits & mask).into())
        }
    };
    let cidr = Cidr {
        address: network,
        prefix_len,
    };
    Ok((cidr.to_string(), cidr))
}

fn bucket(requests: u32, unit: RateLimitUnit) -> TokenBucketSpec {
    TokenBucketSpec {
        max_tokens: requests,
        tokens_per_fill: requests,
        fill_interval: SimDuration::from_secs(unit.seconds()),
    }
}

fn string_match(kind: &IrMatchKind) -> StringMatch {
    match kind {
        IrMatchKind::Exact(value) => StringMatch::Exact(value.clone()),
        IrMatchKind::Prefix(value) => StringMatch::Prefix(value.clone()),
        // Validated when the rule was built.
        IrMatchKind::Regex(source) => match Regex::new(source) {
            Ok(regex) => StringMatch::Regex(regex),
            Err(_) => StringMatch::Exact(source.clone()),
        },
        IrMatchKind::Distinct => StringMatch::Prefix(String::new()),
    }
}

fn header_value_match(key: String, condition: &IrMatch) -> RateLimitAction {
    RateLimitAction::HeaderValueMatch {
        descriptor_key: key.clone(),
        descriptor_value: key,
        expect_match: !condition.invert,
        headers: vec![HeaderMatcher {
            name: condition.name.to_ascii_lowercase(),
            matcher: string_match(&condition.kind),
            invert: false,
        }],
    }
}

fn fixed_entry(key: &str) -> DescriptorEntry {
    DescriptorEntry {
        key: key.to_string(),
        value: Some(key.to_string()),
    }
}

fn wildcard_entry(key: &str) -> DescriptorEntry {
    DescriptorEntry {
        key: key.to_string(),
        value: None,
    }
}

/// The actions and descriptor entries of one rule (and one of its
/// methods), in Envoy Gateway's order: headers, method, path, source
/// address, query parameters.
struct RuleActions {
    actions: Vec<RateLimitAction>,
    entries: Vec<DescriptorEntry>,
}

fn rule_actions(
    rule: &IrRule,
    index: usize,
    method: Option<&IrMatch>,
    global: bool,
) -> RuleActions {
    let mut out = RuleActions {
        actions: Vec::new(),
        entries: Vec::new(),
    };
    for (match_index, header) in rule.headers.iter().enumerate() {
        let key = format!("rule-{index}-match-{match_index}");
        if header.kind == IrMatchKind::Distinct {
            out.actions.push(RateLimitAction::RequestHeaders {
                header_name: header.name.to_ascii_lowercase(),
                descriptor_key: key.clone(),
            });
            out.entries.push(wildcard_entry(&key));
        } else {
            out.actions.push(header_value_match(key.clone(), header));
            out.entries.push(fixed_entry(&key));
        }
    }
    if let Some(method) = method {
        let key = format!("rule-{index}-method");
        out.actions.push(header_value_match(key.clone(), method));
        out.entries.push(fixed_entry(&key));
    }
    if let Some(path) = &rule.path {
        let key = format!("rule-{index}-path");
        out.actions.push(header_value_match(key.clone(), path));
        out.entries.push(fixed_entry(&key));
    }
    if let Some(cidr) = &rule.cidr {
        let (masked_key, remote_key) = if global {
            (
                "masked_remote_address".to_string(),
                "remote_address".to_string(),
            )
        } else {
            (
                format!("rule-{index}-masked-remote-address"),
                format!("rule-{index}-remote-address"),
            )
        };
        let value = if cidr.invert {
            format!("invert:{}", cidr.cidr)
        } else {
            cidr.cidr.clone()
        };
        out.actions.push(RateLimitAction::RemoteAddressMatch {
            descriptor_key: masked_key.clone(),
            descriptor_value: value.clone(),
            ranges: vec![cidr.range],
            invert: cidr.invert,
        });
        out.entries.push(DescriptorEntry {
            key: masked_key,
            value: Some(value),
        });
        if cidr.distinct {
            // Both actions carry the same address matcher, so the second
            // one only adds the client address as the entry's value.
            out.actions.push(RateLimitAction::RemoteAddress {
                descriptor_key: remote_key.clone(),
            });
            out.entries.push(wildcard_entry(&remote_key));
        }
    }
    for (offset, param) in rule.query_params.iter().enumerate() {
        let key = format!("rule-{index}-match-{}", rule.headers.len() + offset);
        if param.kind == IrMatchKind::Distinct {
            out.actions.push(RateLimitAction::QueryParameters {
                query_parameter_name: param.name.clone(),
                descriptor_key: key.clone(),
            });
            out.entries.push(wildcard_entry(&key));
        } else {
            out.actions.push(RateLimitAction::QueryParameterValueMatch {
                descriptor_key: key.clone(),
                descriptor_value: key.clone(),
                expect_match: !param.invert,
                params: vec![QueryParamMatcher {
                    name: param.name.clone(),
                    matcher: string_match(&param.kind),
                }],
            });
            out.entries.push(fixed_entry(&key));
        }
    }
    out
}

/// Methods of a rule as Envoy Gateway expands them: one `rate_limits`
/// entry per method, or one entry without a method condition.
fn method_variants(rule: &IrRule) -> Vec<Option<&IrMatch>> {
    if rule.methods.is_empty() {
        vec![None]
    } else {
        rule.methods.iter().map(Some).collect()
    }
}

/// Builds the local rate limit filter's per-route configuration.
pub fn local_to_envoy(local: &IrLocal) -> LocalRateLimit {
    let mut rate_limits = Vec::new();
    let mut descriptors = Vec::new();
    for (index, rule) in local.rules.iter().enumerate() {
        for method in method_variants(rule) {
            let built = rule_actions(rule, index, method, false);
            rate_limits.push(RateLimitActions {
                actions: built.actions,
                hits_addend: None,
                apply_on_stream_done: false,
            });
            descriptors.push(LocalDescriptor {
                entries: built.entries,
                bucket: bucket(rule.requests, rule.unit),
                shadow_mode: rule.shadow_mode,
            });
        }
    }
    LocalRateLimit {
        default_bucket: bucket(local.default_requests, local.default_unit),
        descriptors,
        rate_limits,
        always_consume_default_token_bucket: false,
        // Envoy Gateway leaves the per-route value unset; Envoy's default.
        max_dynamic_descriptors: 20,
        status: 429,
    }
}

fn hits_addend(cost: &Cost) -> Option<HitsAddend> {
    match cost {
        Cost::Number(number) => Some(HitsAddend::Number(*number)),
        Cost::Metadata(key) => Some(HitsAddend::Metadata {
            namespace: key.namespace.clone(),
            key: key.key.clone(),
        }),
        Cost::Empty => None,
    }
}

/// Builds the global rate limit configuration of one Envoy route, split by the
/// rate limit service domain: the listener's domain for ordinary rules and
/// one domain per policy for `shared` rules.
pub fn global_to_envoy(
    rules: &[IrRule],
    route_name: &str,
    listener_domain: &str,
) -> Vec<GlobalRateLimit> {
    let mut by_domain: Vec<GlobalRateLimit> = Vec::new();
    let mut shared_seen = 0;
    let mut unshared_seen = 0;
    for rule in rules {
        let index = if rule.shared {
            shared_seen += 1;
            shared_seen - 1
        } else {
            unshared_seen += 1;
            unshared_seen - 1
        };
        let domain = if rule.shared {
            policy_domain(&rule.name)
        } else {
            listener_domain.to_string()
        };
        let top_key = if rule.shared {
            rule.name.clone()
        } else {
            route_name.to_string()
        };
        let position = match by_domain.iter().position(|g| g.domain == domain) {
            Some(position) => position,
            None => {
                by_domain.push(GlobalRateLimit {
                    domain: domain.clone(),
                    rate_limits: Vec::new(),
                    limits: Vec::new(),
                });
                by_domain.len() - 1
            }
        };
        let target = &mut by_domain[position];
        for method in method_variants(rule) {
            let built = rule_actions(rule, index, method, true);
            let mut actions = vec![RateLimitAction::GenericKey {
                descriptor_key: top_key.clone(),
                descriptor_value: top_key.clone(),
            }];
            actions.extend(built.actions);
            if !rule.has_selectors() {
                let key = format!("rule-{index}-match--1");
                actions.push(RateLimitAction::GenericKey {
                    descriptor_key: key.clone(),
                    descriptor_value: key,
                });
            }
            target.rate_limits.push(RateLimitActions {
                actions: actions.clone(),
                hits_addend: rule.request_cost.as_ref().and_then(hits_addend),
                apply_on_stream_done: false,
            });
            if let Some(cost) = &rule.response_cost {
                target.rate_limits.push(RateLimitActions {
                    actions,
                    hits_addend: hits_addend(cost),
                    apply_on_stream_done: true,
                });
            }
        }
        // The service's configuration contains one chain per rule, whatever
        // the number of methods: methods share one `rule-k-method` level.
        let first_method = rule.methods.first();
        let built = rule_actions(rule, index, first_method, true);
        let mut chain = vec![fixed_entry(&top_key)];
        chain.extend(built.entries);
        if !rule.has_selectors() {
            chain.push(fixed_entry(&format!("rule-{index}-match--1")));
        }
        let limit = GlobalLimit {
            chain,
            requests_per_unit: rule.requests,
            unit: rule.unit,
            shadow_mode: rule.shadow_mode,
        };
        // Shared rules reach the service once per domain, not once per route.
        if !target.limits.iter().any(|l| l.chain == limit.chain) {
            target.limits.push(limit);
        }
    }
    by_domain
}

/// Returns the rate limit service domain of a shared rule: its policy's
/// `namespace/name`.
fn policy_domain(rule_name: &str) -> String {
    match rule_name.rfind("/rule/") {
        Some(end) => rule_name[..end].to_string(),
        None => rule_name.replacen('/', "-", 1),
    }
}

/// Merges a Gateway policy's rate limit (the base) with a route policy's
/// (the patch), as Envoy Gateway v1.9 does for `mergeType`: rules are
/// keyed by name, so `StrategicMerge` keeps both lists and `JSONMerge`
/// keeps the route's.
pub fn merge_rate_limits(base: &IrRateLimit, patch: &IrRateLimit, strategic: bool) -> IrRateLimit {
    let local = match (&base.local, &patch.local) {
        (Some(base), Some(patch)) => Some(IrLocal {
            default_requests: patch.default_requests,
            default_unit: patch.default_unit,
            rules: merge_rules(&base.rules, &patch.rules, strategic),
        }),
        (base, patch) => patch.clone().or_else(|| base.clone()),
    };
    let global = match (&base.global, &patch.global) {
        (Some(base), Some(patch)) => Some(merge_rules(base, patch, strategic)),
        (base, patch) => patch.clone().or_else(|| base.clone()),
    };
    IrRateLimit { local, global }
}

fn merge_rules(base: &[IrRule], patch: &[IrRule], strategic: bool) -> Vec<IrRule> {
    if !strategic {
        return patch.to_vec();
    }
    // Kubernetes strategic merge lists the patch's items first, then the
    // base items the patch does not name.
    let mut merged = patch.to_vec();
    merged.extend(
        base.iter()
            .filter(|rule| !patch.iter().any(|p| p.name == rule.name))
            .cloned(),
    );
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::policy::{CidrSelector, ValueSelector};

    fn rule(selectors: Vec<ClientSelector>, requests: u32, unit: RateLimitUnit) -> RateLimitRule {
        RateLimitRule {
            selectors,
            requests,
            unit,
            from_metadata: None,
            request_cost: None,
            response_cost: None,
            shared: None,
            shadow_mode: false,
        }
    }

    fn header(name: &str, kind: SelectorKind, value: Option<&str>, invert: bool) -> ClientSelector {
        ClientSelector {
            headers: vec![ValueSelector {
                name: name.to_string(),
                kind,
                value: value.map(str::to_string),
                invert,
            }],
            ..ClientSelector::default()
        }
    }

    fn local(rules: Vec<RateLimitRule>) -> Result<IrRateLimit, String> {
        let spec = RateLimitSpec {
            kind: None,
            local: Some(rules),
            global: None,
        };
        build_rate_limit(&spec, "ns/p", true)
    }

    #[test]
    fn literal_star_is_exact_match() {
        let ir = local(vec![rule(
            vec![header("x-user-id", SelectorKind::Exact, Some("*"), false)],
            3,
            RateLimitUnit::Minute,
        )])
        .unwrap();
        let envoy = local_to_envoy(ir.local.as_ref().unwrap());
        assert_eq!(envoy.default_bucket.max_tokens, u32::MAX);
        assert_eq!(
            envoy.default_bucket.fill_interval,
            SimDuration::from_secs(1)
        );
        assert_eq!(
            envoy.descriptors[0].entries,
            vec![fixed_entry("rule-0-match-0")]
        );
        let RateLimitAction::HeaderValueMatch {
            expect_match,
            headers,
            ..
        } = &envoy.rate_limits[0].actions[0]
        else {
            panic!("expected a header_value_match action");
        };
        assert!(*expect_match);
        assert!(matches!(&headers[0].matcher, StringMatch::Exact(v) if v == "*"));
        assert_eq!(envoy.max_dynamic_descriptors, 20);
        assert!(!envoy.always_consume_default_token_bucket);
    }

    #[test]
    fn catch_all_rule_is_not_numbered() {
        let ir = local(vec![
            rule(vec![], 100, RateLimitUnit::Minute),
            rule(
                vec![header("x-user-id", SelectorKind::Distinct, None, false)],
                3,
                RateLimitUnit::Hour,
            ),
        ])
        .unwrap();
        let local = ir.local.unwrap();
        assert_eq!(local.rules[0].name, "ns/p/rule/1");
        let envoy = local_to_envoy(&local);
        assert_eq!(envoy.default_bucket.max_tokens, 100);
        assert_eq!(
            envoy.descriptors[0].entries,
            vec![wildcard_entry("rule-0-match-0")]
        );
    }

    #[test]
    fn translator_errors_match_envoy_gateway() {
        let two_defaults = local(vec![
            rule(vec![], 1, RateLimitUnit::Second),
            rule(vec![], 2, RateLimitUnit::Second),
        ]);
        assert!(
            two_defaults
                .unwrap_err()
                .contains("more than one rule without clientSelectors")
        );
        let bad_unit = local(vec![
            rule(vec![], 1, RateLimitUnit::Hour),
            rule(
                vec![header("a", SelectorKind::Exact, Some("b"), false)],
                1,
                RateLimitUnit::Minute,
            ),
        ]);
        assert!(
            bad_unit
                .unwrap_err()
                .contains("must be a multiple of the default limit unit")
        );
        let week_in_month = local(vec![
            rule(vec![], 1, RateLimitUnit::Week),
            rule(
                vec![header("a", SelectorKind::Exact, Some("b"), false)],
                1,
                RateLimitUnit::Month,
            ),
        ]);
        assert!(week_in_month.is_err());
        let distinct_value = local(vec![rule(
            vec![header("a", SelectorKind::Distinct, Some("b"), false)],
            1,
            RateLimitUnit::Second,
        )]);
        assert!(distinct_value.unwrap_err().contains("missing a value"));
        let distinct_invert = local(vec![rule(
            vec![header("a", SelectorKind::Distinct, None, true)],
            1,
            RateLimitUnit::Second,
        )]);
        assert!(
            distinct_invert
                .unwrap_err()
                .contains("Invert is not applicable")
        );
        let bad_regex = local(vec![rule(
            vec![header(
                "a",
                SelectorKind::RegularExpression,
                Some("*.illegal.regex"),
                false,
            )],
            1,
            RateLimitUnit::Second,
        )]);
        assert!(
            bad_regex
                .unwrap_err()
                .starts_with("regex \"*.illegal.regex\" is invalid")
        );
    }

    #[test]
    fn inverted_cidr_gets_prefixed_value() {
        let selector = ClientSelector {
            source_cidr: Some(CidrSelector {
                distinct: true,
                value: "10.1.2.3/16".to_string(),
                invert: true,
            }),
            ..ClientSelector::default()
        };
        let ir = local(vec![rule(vec![selector], 5, RateLimitUnit::Second)]).unwrap();
        let envoy = local_to_envoy(ir.local.as_ref().unwrap());
        assert_eq!(
            envoy.descriptors[0].entries,
            vec![
                DescriptorEntry {
                    key: "rule-0-masked-remote-address".to_string(),
                    value: Some("invert:10.1.0.0/16".to_string()),
                },
                wildcard_entry("rule-0-remote-address"),
            ]
        );
    }

    #[test]
    fn cidr_parsing_follows_go() {
        assert_eq!(parse_cidr("192.168.1.7/16").unwrap().0, "192.168.0.0/16");
        assert!(parse_cidr("192.168.1.7").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert_eq!(parse_cidr("2001:db8::1/32").unwrap().0, "2001:db8::/32");
    }

    #[test]
    fn path_prefix_matches_whole_segments() {
        let regex = Regex::new(&path_separated_prefix_regex("/api/")).unwrap();
        assert!(regex.is_match("/api"));
        assert!(regex.is_match("/api/v1"));
        assert!(regex.is_match("/api?x=1"));
        assert!(!regex.is_match("/apix"));
    }

    #[test]
    fn global_rule_without_selectors_gets_generic_key() {
        let spec = RateLimitSpec {
            kind: None,
            local: None,
            global: Some(vec![rule(vec![], 5, RateLimitUnit::Minute)]),
        };
        let ir = build_rate_limit(&spec, "ns/p", true).unwrap();
        let global = global_to_envoy(ir.global.as_ref().unwrap(), "route-a", "ns/gw/http");
        assert_eq!(global[0].domain, "ns/gw/http");
        assert_eq!(
            global[0].limits[0].chain,
            vec![fixed_entry("route-a"), fixed_entry("rule-0-match--1")]
        );
        let disabled = build_rate_limit(&spec, "ns/p", false);
        assert!(disabled.unwrap_err().contains("enable Ratelimit"));
    }
}
