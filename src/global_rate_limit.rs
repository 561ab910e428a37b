//! Global rate limiting: Envoy's `ratelimit` HTTP filter and the
//! envoyproxy/ratelimit service, which keeps fixed-window counters in Redis.
//!
//! Follows Envoy 1.40 (`filters/http/ratelimit`) and envoyproxy/ratelimit
//! with its Redis backend and default settings, as Envoy Gateway v1.9
//! deploys it:
//!
//! - Envoy sends one call per request with every descriptor the route's
//!   `rate_limits` produce ([`build_request`]). Entries marked
//!   `apply_on_stream_done` go in a second call when the stream ends, and
//!   Envoy does not wait for its response.
//! - The service finds each descriptor's limit by walking its configuration
//!   ([`ServiceConfig::find_limit`]). It keys a counter by domain, descriptor
//!   and window start, aligned to multiples of the unit since the Unix
//!   epoch ([`cache_key`]). It increments every counter that has a limit in
//!   one Redis pipeline, even for hits that end up over the limit
//!   ([`Redis::execute`]).
//! - A descriptor is over limit when its counter exceeds
//!   `requests_per_unit` ([`descriptor_status`]). The call is over limit when
//!   any descriptor is.
//! - Envoy turns the response into continue or 429. An error or a timeout
//!   becomes continue without a limit (fail open) or 500 (fail closed)
//!   ([`FilterSettings::decide`]).
//!
//! The service's work is split into [`ServiceConfig::plan`],
//! [`Redis::execute`] and [`ServiceConfig::finish`] because simulated time
//! passes between them. Latencies, timeouts, replicas and faults belong to
//! the simulation (`sim::rate_limit_service`). This module reads no clock:
//! callers pass the service's wall-clock time as Unix seconds.

use std::collections::{BTreeMap, HashMap};

use crate::descriptor::{self, Descriptor, RequestAttrs};
use crate::gateway::{GatewayModel, GlobalLimit, GlobalRateLimit, HitsAddend};

/// The service's `NEAR_LIMIT_RATIO` default. Only the near-limit stat uses it.
pub const NEAR_LIMIT_RATIO: f32 = 0.8;

/// Largest `hits_addend` Envoy accepts from a format string such as
/// `%DYNAMIC_METADATA(...)%`; a larger value drops the descriptor.
pub const MAX_HITS_ADDEND: u64 = 1_000_000_000;

/// When Envoy calls the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// While decoding the request headers. Envoy pauses the request until the
    /// response or the timeout.
    Request,
    /// When the stream ends, for `apply_on_stream_done` entries (response
    /// cost). Envoy does not wait for the response.
    StreamDone,
}

/// Token counts of one response, which an AI gateway filter writes to
/// dynamic metadata once the backend has responded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

/// One descriptor of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDescriptor {
    pub entries: Descriptor,
    /// Envoy's per-descriptor `hits_addend`. `None` makes the service count
    /// one hit; `Some(0)` checks the counter without adding to it.
    pub hits_addend: Option<u64>,
}

/// One `ShouldRateLimit` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitRequest {
    pub domain: String,
    pub descriptors: Vec<RequestDescriptor>,
}

/// Builds the call one filter makes in `phase`, or `None` when no
/// descriptor is produced (Envoy then makes no call).
///
/// A `hits_addend` read from dynamic metadata takes its value from `tokens`
/// (see [`metadata_tokens`]). Without tokens, which is always the case
/// before the backend has responded, the metadata is absent and Envoy drops
/// that descriptor, as it does for any `hits_addend` it cannot read.
pub fn build_request(
    config: &GlobalRateLimit,
    request: &RequestAttrs<'_>,
    phase: Phase,
    tokens: Option<TokenUsage>,
) -> Option<RateLimitRequest> {
    let on_stream_done = phase == Phase::StreamDone;
    let mut descriptors = Vec::new();
    for entry in &config.rate_limits {
        if entry.apply_on_stream_done != on_stream_done {
            continue;
        }
        let Some(entries) = descriptor::build(entry, request) else {
            continue;
        };
        let hits_addend = match &entry.hits_addend {
            None => None,
            Some(HitsAddend::Number(number)) => Some(*number),
            Some(HitsAddend::Metadata { key, .. }) => {
                match tokens.map(|tokens| metadata_tokens(key, tokens)) {
                    Some(count) if count <= MAX_HITS_ADDEND => Some(count),
                    _ => continue,
                }
            }
        };
        descriptors.push(RequestDescriptor {
            entries,
            hits_addend,
        });
    }
    if descriptors.is_empty() {
        return None;
    }
    Some(RateLimitRequest {
        domain: config.domain.clone(),
        descriptors,
    })
}

/// Returns the token count stored under dynamic metadata `key`, following
/// the names Envoy AI Gateway uses (`llm_input_token`, `llm_output_token`,
/// `llm_total_token`). A key containing `input` or `prompt` reads the input
/// tokens, one containing `total` reads input plus output, and any other key
/// reads the output tokens.
pub fn metadata_tokens(key: &str, tokens: TokenUsage) -> u64 {
    let key = key.to_ascii_lowercase();
    if key.contains("input") || key.contains("prompt") {
        tokens.input
    } else if key.contains("total") {
        tokens.input.saturating_add(tokens.output)
    } else {
        tokens.output
    }
}

/// Returns the Redis key of a descriptor's counter in the window that
/// contains `now_unix_s`: `<prefix><domain>_<key>_<value>_..._<window start>`.
pub fn cache_key(
    prefix: &str,
    domain: &str,
    entries: &Descriptor,
    unit_s: u64,
    now_unix_s: u64,
) -> String {
    let mut key = String::with_capacity(prefix.len() + domain.len() + 32);
    key.push_str(prefix);
    key.push_str(domain);
    key.push('_');
    for (name, value) in entries {
        key.push_str(name);
        key.push('_');
        key.push_str(value);
        key.push('_');
    }
    let unit_s = unit_s.max(1);
    key.push_str(&(now_unix_s / unit_s * unit_s).to_string());
    key
}

/// One limit of the service's configuration.
#[derive(Clone, Debug)]
pub struct ConfiguredLimit {
    pub domain: String,
    pub limit: GlobalLimit,
    /// The service's stat prefix for the limit: the domain, then each
    /// level as `key_value` (or `key` for a level without a value), joined
    /// by dots.
    pub stat_key: String,
}

/// The rate limit service's configuration: every domain with its limits.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    limits: Vec<ConfiguredLimit>,
    /// Limit indices of each domain.
    domains: BTreeMap<String, Vec<usize>>,
}

/// The service's per-limit counters of hits (not of requests: a hit is one
/// unit of `hits_addend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitStats {
    pub total_hits: u64,
    pub over_limit: u64,
    pub near_limit: u64,
    pub within_limit: u64,
    pub over_limit_with_local_cache: u64,
    pub shadow_mode: u64,
}

/// The service's plan for one descriptor of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedDescriptor {
    /// Index of the matched limit; `None` when no limit applies.
    pub limit: Option<usize>,
    /// Redis key of the counter; empty when no limit applies.
    pub key: String,
    pub hits: u64,
    /// The local over-limit cache contains the key, so Redis is not asked.
    pub cached_over_limit: bool,
}

/// The service's work for one call between reading it and asking Redis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallPlan {
    pub descriptors: Vec<PlannedDescriptor>,
}

impl CallPlan {
    /// Returns whether any counter has to be incremented, which needs Redis.
    pub fn needs_redis(&self) -> bool {
        self.descriptors
            .iter()
            .any(|d| d.limit.is_some() && !d.cached_over_limit)
    }
}

/// The response code of a descriptor or of a whole call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok,
    OverLimit,
}

/// The status of one descriptor in the service's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorStatus {
    pub code: Code,
    /// Hits left in the window; 0 when over limit, `u32::MAX` without a
    /// limit.
    pub limit_remaining: u32,
}

/// The service's response to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceResponse {
    /// Over limit when any descriptor is.
    pub code: Code,
    pub statuses: Vec<DescriptorStatus>,
}

impl ServiceConfig {
    /// Collects the limits of every route's global rate limits, once per
    /// domain and descriptor chain. A `shared` rule reaches the same domain
    /// from several routes and so appears once.
    pub fn from_model(model: &GatewayModel) -> ServiceConfig {
        let configs = model.routes.iter().flat_map(|route| {
            route
                .global_rate_limit
                .iter()
                .chain(&route.shared_global_rate_limits)
        });
        ServiceConfig::from_configs(configs)
    }

    pub fn from_configs<'a>(
        configs: impl IntoIterator<Item = &'a GlobalRateLimit>,
    ) -> ServiceConfig {
        let mut service = ServiceConfig::default();
        for config in configs {
            for limit in &config.limits {
                let known = service.domains.get(&config.domain).is_some_and(|ids| {
                    ids.iter()
                        .any(|&id| service.limits[id].limit.chain == limit.chain)
                });
                if known {
                    continue;
                }
                let id = service.limits.len();
                service.limits.push(ConfiguredLimit {
                    domain: config.domain.clone(),
                    limit: limit.clone(),
                    stat_key: stat_key(&config.domain, limit),
                });
                service
                    .domains
                    .entry(config.domain.clone())
                    .or_default()
                    .push(id);
            }
        }
        service
    }

    pub fn limits(&self) -> &[ConfiguredLimit] {
        &self.limits
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Finds the limit of a descriptor as the service walks its
    /// configuration tree. At each level an entry with the request's key and
    /// value wins over one with the key alone (a `Distinct` level). A limit
    /// counts only when it sits at the level of the descriptor's last entry,
    /// so a descriptor longer or shorter than every chain has no limit.
    pub fn find_limit(&self, domain: &str, entries: &Descriptor) -> Option<usize> {
        let ids = self.domains.get(domain)?;
        let mut candidates: Vec<usize> = ids.clone();
        for (depth, (key, value)) in entries.iter().enumerate() {
            let level = |id: &usize| self.limits[*id].limit.chain.get(depth);
            let exact: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|id| {
                    level(id).is_some_and(|e| e.key == *key && e.value.as_deref() == Some(value))
                })
                .collect();
            candidates = if exact.is_empty() {
                candidates
                    .iter()
                    .copied()
                    .filter(|id| level(id).is_some_and(|e| e.key == *key && e.value.is_none()))
                    .collect()
            } else {
                exact
            };
            if candidates.is_empty() {
                return None;
            }
        }
        candidates
            .into_iter()
            .find(|id| self.limits[*id].limit.chain.len() == entries.len())
    }

    /// Runs the service's first step for a call at `now_unix_s`: looks up
    /// each descriptor's limit and key, counts its hits in `total_hits`, and
    /// checks the local over-limit cache when there is one.
    pub fn plan(
        &self,
        request: &RateLimitRequest,
        now_unix_s: u64,
        cache: Option<&LocalCache>,
        stats: &mut [LimitStats],
    ) -> CallPlan {
        let descriptors = request
            .descriptors
            .iter()
            .map(|descriptor| {
                // Envoy sends no request-level addend unless a filter state
                // sets one, so a descriptor without its own counts 1.
                let hits = descriptor.hits_addend.unwrap_or(1);
                let Some(id) = self.find_limit(&request.domain, &descriptor.entries) else {
                    return PlannedDescriptor {
                        limit: None,
                        key: String::new(),
                        hits,
                        cached_over_limit: false,
                    };
                };
                let limit = &self.limits[id].limit;
                let key = cache_key(
                    "",
                    &request.domain,
                    &descriptor.entries,
                    limit.unit.seconds(),
                    now_unix_s,
                );
                if let Some(entry) = stats.get_mut(id) {
                    entry.total_hits += hits;
                }
                let cached_over_limit = cache.is_some_and(|c| c.contains(&key, now_unix_s));
                PlannedDescriptor {
                    limit: Some(id),
                    key,
                    hits,
                    cached_over_limit,
                }
            })
            .collect();
        CallPlan { descriptors }
    }

    /// Runs the service's last step: turns the counter values Redis returned
    /// (`counts`, one per planned descriptor) into the response, counts the
    /// stats, and puts keys that went over their limit in the local cache
    /// for one unit.
    pub fn finish(
        &self,
        plan: &CallPlan,
        counts: &[u64],
        mut cache: Option<&mut LocalCache>,
        stats: &mut [LimitStats],
        now_unix_s: u64,
    ) -> ServiceResponse {
        let mut statuses = Vec::with_capacity(plan.descriptors.len());
        for (index, planned) in plan.descriptors.iter().enumerate() {
            let Some(id) = planned.limit else {
                statuses.push(DescriptorStatus {
                    code: Code::Ok,
                    limit_remaining: u32::MAX,
                });
                continue;
            };
            let limit = &self.limits[id].limit;
            let mut scratch = LimitStats::default();
            let entry = stats.get_mut(id).unwrap_or(&mut scratch);
            if planned.cached_over_limit {
                entry.over_limit += planned.hits;
                entry.over_limit_with_local_cache += planned.hits;
                let code = if limit.shadow_mode {
                    entry.shadow_mode += planned.hits;
                    Code::Ok
                } else {
                    Code::OverLimit
                };
                statuses.push(DescriptorStatus {
                    code,
                    limit_remaining: 0,
                });
                continue;
            }
            let after = counts.get(index).copied().unwrap_or(0);
            let status = descriptor_status(
                limit.requests_per_unit,
                limit.shadow_mode,
                after,
                planned.hits,
                entry,
            );
            if after > u64::from(limit.requests_per_unit)
                && let Some(cache) = cache.as_deref_mut()
            {
                cache.insert(planned.key.clone(), now_unix_s, limit.unit.seconds());
            }
            statuses.push(status);
        }
        let code = if statuses.iter().any(|s| s.code == Code::OverLimit) {
            Code::OverLimit
        } else {
            Code::Ok
        };
        ServiceResponse { code, statuses }
    }

    /// Names the service's stats as the service does
    /// (`ratelimit.service.rate_limit.<stat key>.<counter>`), summed over
    /// its replicas.
    pub fn stats_by_name(&self, stats: &[LimitStats]) -> BTreeMap<String, u64> {
        let mut named = BTreeMap::new();
        for (configured, entry) in self.limits.iter().zip(stats) {
            let prefix = format!("ratelimit.service.rate_limit.{}", configured.stat_key);
            let counters = [
                ("total_hits", entry.total_hits),
                ("over_limit", entry.over_limit),
                ("near_limit", entry.near_limit),
                ("within_limit", entry.within_limit),
                (
                    "over_limit_with_local_cache",
                    entry.over_limit_with_local_cache,
                ),
                ("shadow_mode", entry.shadow_mode),
            ];
            for (name, value) in counters {
                *named.entry(format!("{prefix}.{name}")).or_insert(0) += value;
            }
        }
        named
    }
}

fn stat_key(domain: &str, limit: &GlobalLimit) -> String {
    let mut key = domain.to_string();
    for entry in &limit.chain {
        key.push('.');
        key.push_str(&entry.key);
        if let Some(value) = &entry.value {
            key.push('_');
            key.push_str(value);
        }
    }
    key
}

/// Decides one descriptor whose counter is `after` once its `hits` were
/// added, and counts the service's stats. Hits past the limit count as
/// `over_limit`, hits past `NEAR_LIMIT_RATIO` of it as `near_limit`. A
/// shadow-mode limit returns OK and counts its would-be rejections in
/// `shadow_mode`.
pub fn descriptor_status(
    requests_per_unit: u32,
    shadow_mode: bool,
    after: u64,
    hits: u64,
    stats: &mut LimitStats,
) -> DescriptorStatus {
    let limit = u64::from(requests_per_unit);
    let before = after.saturating_sub(hits);
    // The service multiplies in 32-bit floats.
    let near = (requests_per_unit as f32 * NEAR_LIMIT_RATIO).floor() as u64;
    if after <= limit {
        if after > near {
            stats.near_limit += if before >= near { hits } else { after - near };
        }
        stats.within_limit += hits;
        return DescriptorStatus {
            code: Code::Ok,
            limit_remaining: u32::try_from(limit - after).unwrap_or(u32::MAX),
        };
    }
    let over = if before >= limit {
        hits
    } else {
        stats.near_limit += limit - near.max(before);
        after - limit
    };
    stats.over_limit += over;
    if shadow_mode {
        stats.shadow_mode += over;
        return DescriptorStatus {
            code: Code::Ok,
            limit_remaining: 0,
        };
    }
    DescriptorStatus {
        code: Code::OverLimit,
        limit_remaining: 0,
    }
}

/// Redis as the service uses it: counters that `INCRBY` creates at zero and
/// `EXPIRE` removes after a time-to-live.
///
/// The service re-sends `EXPIRE` with one unit (plus a random jitter of up
/// to 300 s by default) on every hit. Each key names its window, so any
/// time-to-live of at least one unit gives the same counts. This model uses
/// exactly one unit, and the jitter only changes how long Redis keeps the
/// key.
#[derive(Debug, Default)]
pub struct Redis {
    /// Counter value and expiry (Unix seconds) by key.
    counters: HashMap<String, (u64, u64)>,
    /// Unix second of the next sweep of expired keys.
    next_sweep_s: u64,
    peak_keys: usize,
}

impl Redis {
    /// Runs the pipeline of a plan at `now_unix_s`: `INCRBY key hits` and
    /// `EXPIRE key unit` for every descriptor with a limit that the local
    /// cache did not decide. Returns each descriptor's counter after the
    /// increment (0 for those not sent).
    pub fn execute(
        &mut self,
        config: &ServiceConfig,
        plan: &CallPlan,
        now_unix_s: u64,
    ) -> Vec<u64> {
        plan.descriptors
            .iter()
            .map(|planned| match planned.limit {
                Some(id) if !planned.cached_over_limit => {
                    let ttl = config.limits[id].limit.unit.seconds();
                    self.increment(&planned.key, planned.hits, ttl, now_unix_s)
                }
                _ => 0,
            })
            .collect()
    }

    /// `INCRBY key hits` then `EXPIRE key ttl_s`; returns the new value.
    pub fn increment(&mut self, key: &str, hits: u64, ttl_s: u64, now_unix_s: u64) -> u64 {
        self.sweep(now_unix_s);
        let expires = now_unix_s.saturating_add(ttl_s);
        let value = match self.counters.get_mut(key) {
            Some((value, expiry)) if *expiry > now_unix_s => {
                *value = value.saturating_add(hits);
                *expiry = expires;
                *value
            }
            _ => {
                self.counters.insert(key.to_string(), (hits, expires));
                hits
            }
        };
        self.peak_keys = self.peak_keys.max(self.counters.len());
        value
    }

    /// Returns the current value of a key, 0 when absent or expired.
    pub fn get(&self, key: &str, now_unix_s: u64) -> u64 {
        match self.counters.get(key) {
            Some((value, expiry)) if *expiry > now_unix_s => *value,
            _ => 0,
        }
    }

    /// Most keys held at once.
    pub fn peak_keys(&self) -> usize {
        self.peak_keys
    }

    /// Drops expired keys, at most once per simulated second, so the keys
    /// kept are those of the current windows (plus at most one second of
    /// expired ones), however long the run.
    fn sweep(&mut self, now_unix_s: u64) {
        if now_unix_s < self.next_sweep_s {
            return;
        }
        self.counters.retain(|_, (_, expiry)| *expiry > now_unix_s);
        self.next_sweep_s = now_unix_s + 1;
    }
}

/// The service's optional local cache of keys known to be over limit
/// (`LOCAL_CACHE_SIZE_IN_BYTES` > 0), one per service replica. A cached key
/// is reported over limit without asking Redis.
#[derive(Debug, Default)]
pub struct LocalCache {
    /// Expiry (Unix seconds) by key.
    entries: HashMap<String, u64>,
    next_sweep_s: u64,
}

impl LocalCache {
    pub fn contains(&self, key: &str, now_unix_s: u64) -> bool {
        self.entries
            .get(key)
            .is_some_and(|expiry| *expiry > now_unix_s)
    }

    /// Caches `key` from `now_unix_s` for `ttl_s` seconds.
    pub fn insert(&mut self, key: String, now_unix_s: u64, ttl_s: u64) {
        if now_unix_s >= self.next_sweep_s {
            self.entries.retain(|_, expiry| *expiry > now_unix_s);
            self.next_sweep_s = now_unix_s + 1;
        }
        self.entries.insert(key, now_unix_s.saturating_add(ttl_s));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The outcome of a call, as the filter acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    Ok,
    OverLimit,
    /// The call failed or timed out: the service was unreachable, Redis
    /// failed, or no response came before the filter's timeout.
    Error,
}

impl From<Code> for CallResult {
    fn from(code: Code) -> CallResult {
        match code {
            Code::Ok => CallResult::Ok,
            Code::OverLimit => CallResult::OverLimit,
        }
    }
}

/// The filter's decision for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterDecision {
    /// The request goes on to the next filter.
    Continue,
    /// The call failed and the filter fails open: the request goes on
    /// without any limit (Envoy counts `failure_mode_allowed`).
    ContinueUnlimited,
    /// A local reply with this status.
    Reject(u16),
}

/// The filter settings Envoy Gateway controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterSettings {
    /// Envoy's `failure_mode_deny`, Envoy Gateway's `rateLimit.failClosed`
    /// (default false).
    pub failure_mode_deny: bool,
    /// Status of an over-limit request; Envoy's default, 429.
    pub rate_limited_status: u16,
    /// Status when the call fails and the filter fails closed; Envoy's
    /// default, 500.
    pub status_on_error: u16,
}

impl Default for FilterSettings {
    fn default() -> Self {
        FilterSettings {
            failure_mode_deny: false,
            rate_limited_status: 429,
            status_on_error: 500,
        }
    }
}

impl FilterSettings {
    pub fn decide(&self, result: CallResult) -> FilterDecision {
        match result {
            CallResult::Ok => FilterDecision::Continue,
            CallResult::OverLimit => FilterDecision::Reject(self.rate_limited_status),
            CallResult::Error if self.failure_mode_deny => {
                FilterDecision::Reject(self.status_on_error)
            }
            CallResult::Error => FilterDecision::ContinueUnlimited,
        }
    }
}

#[cfg(test)]
mod tests;
