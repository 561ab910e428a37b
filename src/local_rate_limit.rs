//! Envoy's local rate limit filter: token buckets per route per replica.
//!
//! Follows Envoy 1.40 (`local_ratelimit_impl.cc` and
//! `token_bucket_impl.cc`): buckets start full and refill continuously at
//! `tokens_per_fill / fill_interval`; every bucket a request matches is
//! debited strictest first (lowest fill rate) with no refund when a later
//! one rejects; the route's default bucket is used only when no descriptor
//! matched (unless `always_consume_default_token_bucket`); wildcard
//! descriptors give each distinct value its own bucket, kept in an LRU of
//! `max_dynamic_descriptors` entries. The timer-driven refill of Envoy up to
//! 1.31 is available as [`RefillModel::Timer`].
//!
//! Which requests reach the filter, and what a rejection looks like to the
//! client, is decided by the proxy.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::descriptor::{self, Descriptor, DescriptorBuffer, RequestAttrs};
use crate::gateway::{LocalDescriptor, LocalRateLimit, RateLimitActions, TokenBucketSpec};
use crate::time::SimTime;

/// How buckets regain tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefillModel {
    /// Envoy 1.32 and later: tokens accrue continuously, in fractions.
    #[default]
    Continuous,
    /// Envoy 1.31 and earlier: `tokens_per_fill` whole tokens are added on
    /// every `fill_interval` tick, ticks counted from when the limiter was
    /// created.
    Timer,
}

/// The slowest refill Envoy allows: one token per 365-day year.
const MIN_FILL_RATE_PER_S: f64 = 1.0 / 31_536_000.0;

/// Rounding slack per token of capacity when comparing available tokens
/// with a cost.
const TOKEN_TOLERANCE: f64 = 1e-12;

/// One token bucket.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    shape: BucketShape,
    level: BucketLevel,
}

/// The fixed part of a bucket: its capacity and refill. Per-value
/// buckets of one descriptor share theirs, so each stores only its
/// [`BucketLevel`].
#[derive(Clone, Copy, Debug)]
struct BucketShape {
    max_tokens: f64,
    /// Tokens per second.
    fill_rate: f64,
    tokens_per_fill: f64,
    fill_interval_ns: u64,
}

/// The tokens of a bucket, in the form its refill model keeps them.
#[derive(Clone, Copy, Debug)]
enum BucketLevel {
    /// Envoy's atomic bucket stores one instant `T`: tokens available at
    /// `now` are `min(max, (now - T) * rate)`. `T` is kept as an integer
    /// instant minus a span in seconds, so that the subtraction stays exact
    /// however long the run: `T = origin - offset_s`.
    Continuous { origin: SimTime, offset_s: f64 },
    Timer {
        tokens: f64,
        /// Tick count already applied (ticks at multiples of the interval).
        ticks_applied: u64,
    },
}

impl BucketShape {
    fn new(spec: &TokenBucketSpec) -> BucketShape {
        let interval_s = spec.fill_interval.as_secs_f64();
        let rate = if interval_s > 0.0 {
            f64::from(spec.tokens_per_fill) / interval_s
        } else {
            f64::INFINITY
        };
        BucketShape {
            max_tokens: f64::from(spec.max_tokens),
            fill_rate: rate.max(MIN_FILL_RATE_PER_S),
            tokens_per_fill: f64::from(spec.tokens_per_fill),
            fill_interval_ns: spec.fill_interval.as_nanos().max(1),
        }
    }

    /// Returns the level of a full bucket created at `now`.
    fn full(&self, model: RefillModel, now: SimTime) -> BucketLevel {
        match model {
            RefillModel::Continuous => BucketLevel::Continuous {
                origin: now,
                offset_s: self.max_tokens / self.fill_rate,
            },
            RefillModel::Timer => BucketLevel::Timer {
                tokens: self.max_tokens,
                ticks_applied: now.as_nanos() / self.fill_interval_ns,
            },
        }
    }
}

impl BucketLevel {
    /// Tokens available at `now` in a bucket of `shape`.
    fn available(&mut self, shape: &BucketShape, now: SimTime) -> f64 {
        match self {
            BucketLevel::Continuous { origin, offset_s } => {
                let elapsed = now.saturating_since(*origin).as_secs_f64() + *offset_s;
                (elapsed * shape.fill_rate).min(shape.max_tokens)
            }
            BucketLevel::Timer {
                tokens,
                ticks_applied,
            } => {
                let ticks = now.as_nanos() / shape.fill_interval_ns;
                if ticks > *ticks_applied {
                    let added = (ticks - *ticks_applied) as f64 * shape.tokens_per_fill;
                    *tokens = (*tokens + added).min(shape.max_tokens);
                    *ticks_applied = ticks;
                }
                *tokens
            }
        }
    }

    /// Takes `cost` tokens from a bucket of `shape` if that many are
    /// available; otherwise changes nothing and returns false.
    fn consume(&mut self, shape: &BucketShape, cost: f64, now: SimTime) -> bool {
        let available = self.available(shape, now);
        // Envoy compares the doubles exactly; the tolerance only absorbs
        // the rounding of `elapsed * rate`, which grows with the bucket size.
        if available + TOKEN_TOLERANCE * shape.max_tokens.max(1.0) < cost {
            return false;
        }
        let available = available.max(cost);
        match self {
            BucketLevel::Continuous { origin, offset_s } => {
                *origin = now;
                *offset_s = (available - cost) / shape.fill_rate;
            }
            BucketLevel::Timer { tokens, .. } => *tokens -= cost,
        }
        true
    }
}

impl TokenBucket {
    /// Creates a full bucket at `now`.
    pub fn new(spec: &TokenBucketSpec, model: RefillModel, now: SimTime) -> TokenBucket {
        let shape = BucketShape::new(spec);
        TokenBucket {
            level: shape.full(model, now),
            shape,
        }
    }

    /// Tokens per second this bucket refills at.
    pub fn fill_rate(&self) -> f64 {
        self.shape.fill_rate
    }

    pub fn max_tokens(&self) -> f64 {
        self.shape.max_tokens
    }

    /// Tokens available at `now`.
    pub fn available(&mut self, now: SimTime) -> f64 {
        self.level.available(&self.shape, now)
    }

    /// Takes `cost` tokens if that many are available; otherwise changes
    /// nothing and returns false.
    pub fn consume(&mut self, cost: f64, now: SimTime) -> bool {
        self.level.consume(&self.shape, cost, now)
    }
}

/// The outcome of one request at the local rate limit filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Rejected; the client gets the filter's status (429 by default).
    Limited,
    /// A shadow-mode bucket was empty: counted as limited, but allowed.
    ShadowLimited,
}

/// A multiply-rotate `Hasher` that takes eight bytes per step. Lookups of
/// per-value buckets hash short strings millions of times, and no
/// iteration order depends on the hash.
#[derive(Default)]
struct WordHasher(u64);

/// The golden ratio in 64-bit fixed point: odd, with well-mixed bits.
const WORD_HASH_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add_word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(WORD_HASH_MULTIPLIER);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // The low bits of a product depend only on the low bits of its
        // factors, and the table picks buckets by the low bits, so the
        // well-mixed high half is folded into them.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add_word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add_word(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add_word(u64::from(byte));
    }
}

const NONE: u32 = u32::MAX;

/// One per-value bucket. Slots are aligned to half a cache line, so that
/// deciding a request of a known key reads one line of the bucket storage,
/// and two buckets share a line.
#[derive(Debug)]
#[repr(align(32))]
struct DynamicSlot {
    level: BucketLevel,
    /// Times the slot was given to another key, so that a slot number
    /// remembered with its generation identifies one key's bucket.
    generation: u64,
}

/// Neighbours of a slot in the recency list: `newer` towards the most
/// recently used end.
#[derive(Clone, Copy, Debug)]
struct Link {
    newer: u32,
    older: u32,
}

/// Per-value buckets of one wildcard descriptor, least recently used
/// evicted first. Keys are the descriptor's values joined by U+001F.
#[derive(Debug, Default)]
struct DynamicBuckets {
    index: HashMap<String, u32, BuildHasherDefault<WordHasher>>,
    /// Key of each slot, read to find an evicted key in `index`.
    keys: Vec<String>,
    slots: Vec<DynamicSlot>,
    /// Recency links of each slot. They are kept apart from the slots
    /// because moving a slot to the front relinks up to four slots, and
    /// eight links share a cache line where only two slots do.
    links: Vec<Link>,
    /// Most and least recently used slots.
    newest: u32,
    oldest: u32,
    evictions: u64,
}

impl DynamicBuckets {
    fn unlink(&mut self, slot: u32) {
        let Link { newer, older } = self.links[slot as usize];
        match newer {
            NONE => self.newest = older,
            newer => self.links[newer as usize].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            older => self.links[older as usize].newer = newer,
        }
    }

    /// True when `slot` still contains the bucket it contained at
    /// `generation`.
    fn is_current(&self, slot: u32, generation: u64) -> bool {
        self.slots
            .get(slot as usize)
            .is_some_and(|entry| entry.generation == generation)
    }

    /// Makes `slot` the most recently used and returns its bucket's level.
    fn touch(&mut self, slot: u32) -> &mut BucketLevel {
        if self.newest != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
        &mut self.slots[slot as usize].level
    }

    /// Finds the slot of `key`'s bucket, or creates the bucket, evicting
    /// the least recently used one when full, and makes it the most
    /// recently used.
    fn find_or_insert(
        &mut self,
        key: &str,
        shape: &BucketShape,
        capacity: usize,
        model: RefillModel,
        now: SimTime,
    ) -> u32 {
        if self.slots.is_empty() {
            self.newest = NONE;
            self.oldest = NONE;
        }
        if let Some(&slot) = self.index.get(key) {
            self.touch(slot);
            return slot;
        }
        let level = shape.full(model, now);
        let slot = if self.index.len() >= capacity.max(1) && self.oldest != NONE {
            let evicted = self.oldest;
            self.unlink(evicted);
            let old_key = std::mem::replace(&mut self.keys[evicted as usize], key.to_string());
            self.index.remove(&old_key);
            self.evictions += 1;
            let entry = &mut self.slots[evicted as usize];
            entry.level = level;
            entry.generation += 1;
            evicted
        } else {
            self.keys.push(key.to_string());
            self.slots.push(DynamicSlot {
                level,
                generation: 0,
            });
            self.links.push(Link {
                newer: NONE,
                older: NONE,
            });
            (self.slots.len() - 1) as u32
        };
        self.index.insert(key.to_string(), slot);
        self.push_front(slot);
        slot
    }

    /// Makes `slot` the most recently used; it must not be linked.
    fn push_front(&mut self, slot: u32) {
        let previous = self.newest;
        self.links[slot as usize] = Link {
            newer: NONE,
            older: previous,
        };
        if previous != NONE {
            self.links[previous as usize].newer = slot;
        }
        self.newest = slot;
        if self.oldest == NONE {
            self.oldest = slot;
        }
    }
}

enum DescriptorBuckets {
    Fixed(TokenBucket),
    /// A wildcard descriptor's per-value buckets, all of `shape`.
    Dynamic {
        shape: BucketShape,
        buckets: DynamicBuckets,
    },
}

/// A configured descriptor that the descriptor of one `rate_limits` entry
/// can match, judged from the entry's keys and fixed values.
#[derive(Debug)]
struct Candidate {
    descriptor: usize,
    /// Positions whose configured value must equal the request's value,
    /// which the request alone decides.
    compare: Vec<usize>,
}

/// The configured descriptors one `rate_limits` entry can match, in
/// configuration order, so that deciding a request compares only the
/// values taken from it instead of every key and value.
#[derive(Debug, Default)]
struct EntryPlan {
    /// Descriptors without a wildcard.
    exact: Vec<Candidate>,
    /// Wildcard descriptors, tried when no exact one matches.
    wildcard: Vec<Candidate>,
}

impl EntryPlan {
    fn new(entry: &RateLimitActions, configured: &[LocalDescriptor]) -> EntryPlan {
        let fixed: Vec<(&str, Option<&str>)> =
            entry.actions.iter().map(descriptor::fixed_entry).collect();
        let mut plan = EntryPlan::default();
        for (index, candidate) in configured.iter().enumerate() {
            if candidate.entries.len() != fixed.len() {
                continue;
            }
            let mut compare = Vec::new();
            let mut possible = true;
            for (position, (configured, (key, value))) in
                candidate.entries.iter().zip(&fixed).enumerate()
            {
                possible &= configured.key == *key;
                match (&configured.value, value) {
                    (Some(expected), Some(value)) => possible &= expected.as_str() == *value,
                    (Some(_), None) => compare.push(position),
                    (None, _) => {}
                }
            }
            if !possible {
                continue;
            }
            let candidate = Candidate {
                descriptor: index,
                compare,
            };
            if is_wildcard(&configured[index]) {
                plan.wildcard.push(candidate);
            } else {
                plan.exact.push(candidate);
            }
        }
        plan
    }
}

/// Key of a set of requests with identical attributes: the same host,
/// path, method, headers and source address. The caller chooses the
/// numbers and guarantees that identity, because
/// [`LocalLimiter::check_repeated`] decides every request of a key with
/// what it found for the first one. Both numbers index tables, so they
/// should be small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrsKey {
    /// The sender, such as a client instance.
    pub client: u32,
    /// Number of one of the sender's requests, such as one per user.
    pub variant: u32,
}

/// A configured descriptor that a request matched.
#[derive(Clone, Copy, Debug)]
struct Hit {
    descriptor: u32,
    /// Index of the request descriptor, whose values key a wildcard's bucket.
    request: u32,
    shadow: bool,
    /// For a wildcard descriptor: the slot its per-value bucket was last
    /// found in, `NONE` before that, and the slot's generation then.
    slot: u32,
    generation: u64,
}

/// The hits of one key's requests, in debiting order.
#[derive(Clone, Copy, Debug)]
enum CachedHits {
    /// The only hit, kept in the entry itself, so that deciding a request
    /// that matches one descriptor (the usual case) reads no other table
    /// on the way to its bucket.
    One(Hit),
    /// No hit or several: a range of [`HitCache::hits`].
    Range(u32, u32),
}

/// The hits of the requests of each [`AttrsKey`] seen. Each key's hits
/// are stored once, when its first request is decided, because equal
/// attributes always match the same descriptors.
#[derive(Debug, Default)]
struct HitCache {
    /// The hits of each key, indexed by client and variant.
    entries: Vec<Vec<Option<CachedHits>>>,
    /// The hits of the keys with none or several.
    hits: Vec<Hit>,
}

impl HitCache {
    fn get(&self, key: AttrsKey) -> Option<CachedHits> {
        self.entries
            .get(key.client as usize)?
            .get(key.variant as usize)
            .copied()
            .flatten()
    }

    fn entry_mut(&mut self, key: AttrsKey) -> &mut Option<CachedHits> {
        let (client, variant) = (key.client as usize, key.variant as usize);
        if self.entries.len() <= client {
            self.entries.resize_with(client + 1, Vec::new);
        }
        let variants = &mut self.entries[client];
        if variants.len() <= variant {
            variants.resize(variant + 1, None);
        }
        &mut variants[variant]
    }

    fn insert(&mut self, key: AttrsKey, hits: &[Hit]) -> CachedHits {
        let cached = match hits {
            [hit] => CachedHits::One(*hit),
            _ => {
                let start = self.hits.len() as u32;
                self.hits.extend_from_slice(hits);
                CachedHits::Range(start, self.hits.len() as u32)
            }
        };
        *self.entry_mut(key) = Some(cached);
        cached
    }

    /// Returns the hits stored for `key`, which must have an entry.
    #[cfg(test)]
    fn hits_of(&self, key: AttrsKey) -> Vec<Hit> {
        match self.get(key) {
            Some(CachedHits::One(hit)) => vec![hit],
            Some(CachedHits::Range(start, end)) => self.hits[start as usize..end as usize].to_vec(),
            None => panic!("no entry for {key:?}"),
        }
    }
}

/// The runtime state of one route's local rate limit in one replica.
pub struct LocalLimiter {
    config: LocalRateLimit,
    model: RefillModel,
    default_bucket: TokenBucket,
    buckets: Vec<DescriptorBuckets>,
    /// Fill rate of each configured descriptor, tokens per second.
    rates: Vec<f64>,
    /// One plan per `rate_limits` entry.
    plans: Vec<EntryPlan>,
    /// Reused per request, so deciding allocates nothing once warm.
    descriptors: DescriptorBuffer,
    /// The `rate_limits` entry of each request descriptor, when known.
    entries: Vec<Option<usize>>,
    matched: Vec<Hit>,
    key: String,
    cache: HitCache,
}

impl LocalLimiter {
    pub fn new(config: &LocalRateLimit, model: RefillModel, now: SimTime) -> LocalLimiter {
        let buckets = config
            .descriptors
            .iter()
            .map(|descriptor| {
                if is_wildcard(descriptor) {
                    DescriptorBuckets::Dynamic {
                        shape: BucketShape::new(&descriptor.bucket),
                        buckets: DynamicBuckets::default(),
                    }
                } else {
                    DescriptorBuckets::Fixed(TokenBucket::new(&descriptor.bucket, model, now))
                }
            })
            .collect();
        let rates = config
            .descriptors
            .iter()
            .map(|descriptor| BucketShape::new(&descriptor.bucket).fill_rate)
            .collect();
        LocalLimiter {
            default_bucket: TokenBucket::new(&config.default_bucket, model, now),
            config: config.clone(),
            model,
            buckets,
            rates,
            plans: config
                .rate_limits
                .iter()
                .map(|entry| EntryPlan::new(entry, &config.descriptors))
                .collect(),
            descriptors: DescriptorBuffer::default(),
            entries: Vec::new(),
            matched: Vec::new(),
            key: String::new(),
            cache: HitCache::default(),
        }
    }

    /// Per-value buckets evicted from the LRU so far.
    pub fn evictions(&self) -> u64 {
        self.buckets
            .iter()
            .map(|b| match b {
                DescriptorBuckets::Dynamic { buckets, .. } => buckets.evictions,
                DescriptorBuckets::Fixed(_) => 0,
            })
            .sum()
    }

    /// Decides one request, debiting the buckets it matches.
    pub fn check(&mut self, request: &RequestAttrs<'_>, now: SimTime) -> Decision {
        self.match_request(request);
        self.debit_matched(now)
    }

    /// Builds the descriptors of `request` and stores the configured
    /// descriptors they match in `matched`, strictest first.
    fn match_request(&mut self, request: &RequestAttrs<'_>) {
        build_descriptors(
            &self.config.rate_limits,
            request,
            &mut self.descriptors,
            &mut self.entries,
        );
        self.match_descriptors();
    }

    /// Decides one request as [`Self::check`] does, given that every
    /// request checked with `key` carries the same attributes as this one.
    /// The descriptors the first request of a key matched, and where their
    /// per-value buckets were found, are kept for the next, which then
    /// builds no descriptors and looks up no keys unless its bucket was
    /// evicted since. So the attributes are built, by calling `request`,
    /// only for a key's first request and after an eviction.
    ///
    /// The cache grows with the keys used and is never pruned: a table
    /// entry for every variant up to the highest one seen of each client,
    /// plus one entry per descriptor for each key whose requests match
    /// several.
    pub fn check_repeated<'r>(
        &mut self,
        request: &dyn Fn() -> RequestAttrs<'r>,
        key: AttrsKey,
        now: SimTime,
    ) -> Decision {
        let (cached, unbuilt) = match self.cache.get(key) {
            Some(cached) => (cached, Some(request)),
            None => {
                self.match_request(&request());
                (self.cache.insert(key, &self.matched), None)
            }
        };
        match cached {
            CachedHits::One(mut hit) => {
                let found = (hit.slot, hit.generation);
                let decision = self.debit(std::slice::from_mut(&mut hit), unbuilt, now);
                if (hit.slot, hit.generation) != found {
                    // The hit remembers the new slot of its bucket.
                    *self.cache.entry_mut(key) = Some(CachedHits::One(hit));
                }
                decision
            }
            CachedHits::Range(start, end) => {
                let mut hits = std::mem::take(&mut self.cache.hits);
                let decision = self.debit(&mut hits[start as usize..end as usize], unbuilt, now);
                self.cache.hits = hits;
                decision
            }
        }
    }

    /// Decides one request given its descriptors.
    pub fn check_descriptors(&mut self, descriptors: &[Descriptor], now: SimTime) -> Decision {
        self.descriptors.clear();
        self.entries.clear();
        for descriptor in descriptors {
            self.descriptors.push(descriptor);
            self.entries.push(None);
        }
        self.match_descriptors();
        self.debit_matched(now)
    }

    /// Finds the configured descriptor of each request descriptor in
    /// `descriptors` and stores the hits in `matched`, strictest first.
    fn match_descriptors(&mut self) {
        self.matched.clear();
        for request in 0..self.descriptors.len() {
            let found = match self.entries[request] {
                Some(entry) => self.find_planned(request, entry),
                None => self.find(request),
            };
            if let Some(descriptor) = found {
                self.matched.push(Hit {
                    descriptor: descriptor as u32,
                    request: request as u32,
                    shadow: self.config.descriptors[descriptor].shadow_mode,
                    slot: NONE,
                    generation: 0,
                });
            }
        }
        // Strictest first; the sort is stable, so equal rates keep the
        // order of `rate_limits`.
        let rates = &self.rates;
        self.matched
            .sort_by(|a, b| rates[a.descriptor as usize].total_cmp(&rates[b.descriptor as usize]));
    }

    fn debit_matched(&mut self, now: SimTime) -> Decision {
        let mut hits = std::mem::take(&mut self.matched);
        let decision = self.debit(&mut hits, None, now);
        self.matched = hits;
        decision
    }

    /// Debits the buckets of `hits` in order, up to the first that rejects
    /// outside shadow mode, then the default bucket if it applies.
    /// `unbuilt` builds the request when `descriptors` does not contain
    /// its descriptors yet. They are built only when a per-value bucket
    /// has to be looked up by its key.
    fn debit<'r>(
        &mut self,
        hits: &mut [Hit],
        mut unbuilt: Option<&dyn Fn() -> RequestAttrs<'r>>,
        now: SimTime,
    ) -> Decision {
        let mut shadow_limited = false;
        for hit in hits.iter_mut() {
            if !self.consume_hit(hit, &mut unbuilt, now) {
                if hit.shadow {
                    shadow_limited = true;
                    continue;
                }
                return Decision::Limited;
            }
        }
        if (hits.is_empty() || self.config.always_consume_default_token_bucket)
            && !self.default_bucket.consume(1.0, now)
        {
            return Decision::Limited;
        }
        if shadow_limited {
            Decision::ShadowLimited
        } else {
            Decision::Allowed
        }
    }

    /// Finds the configured descriptor that request descriptor `request`,
    /// produced by `rate_limits` entry `entry`, matches: the same result as
    /// [`Self::find`], comparing only the values the request supplied.
    fn find_planned(&self, request: usize, entry: usize) -> Option<usize> {
        let configured = &self.config.descriptors;
        let matches = |candidate: &&Candidate| {
            candidate.compare.iter().all(|&position| {
                configured[candidate.descriptor].entries[position]
                    .value
                    .as_deref()
                    == Some(self.descriptors.value(request, position))
            })
        };
        let plan = &self.plans[entry];
        plan.exact
            .iter()
            .find(matches)
            .or_else(|| plan.wildcard.iter().find(matches))
            .map(|candidate| candidate.descriptor)
    }

    /// Finds the configured descriptor request descriptor `request`
    /// matches: an exact match first, then a wildcard template.
    fn find(&self, request: usize) -> Option<usize> {
        let entries = self.descriptors.entry_count(request);
        let same_shape = |configured: &LocalDescriptor, wildcard_ok: bool| {
            configured.entries.len() == entries
                && configured
                    .entries
                    .iter()
                    .zip(self.descriptors.entries(request))
                    .all(|(c, (key, value))| {
                        c.key == key
                            && match &c.value {
                                Some(expected) => expected == value,
                                None => wildcard_ok,
                            }
                    })
        };
        self.config
            .descriptors
            .iter()
            .position(|configured| same_shape(configured, false))
            .or_else(|| {
                self.config
                    .descriptors
                    .iter()
                    .position(|configured| is_wildcard(configured) && same_shape(configured, true))
            })
    }

    /// Takes a token from the bucket of `hit`. A per-value bucket is read
    /// from the slot that `hit` stores while that slot still contains it.
    /// Otherwise it is looked up by key, and `hit` stores its new slot.
    fn consume_hit<'r>(
        &mut self,
        hit: &mut Hit,
        unbuilt: &mut Option<&dyn Fn() -> RequestAttrs<'r>>,
        now: SimTime,
    ) -> bool {
        let LocalLimiter {
            config,
            model,
            buckets,
            descriptors,
            entries,
            key,
            ..
        } = self;
        let descriptor = hit.descriptor as usize;
        let (shape, dynamic) = match &mut buckets[descriptor] {
            DescriptorBuckets::Fixed(bucket) => return bucket.consume(1.0, now),
            DescriptorBuckets::Dynamic { shape, buckets } => (&*shape, buckets),
        };
        if dynamic.is_current(hit.slot, hit.generation) {
            return dynamic.touch(hit.slot).consume(shape, 1.0, now);
        }
        if let Some(request) = unbuilt.take() {
            build_descriptors(&config.rate_limits, &request(), descriptors, entries);
        }
        let key = bucket_key(descriptors, hit.request as usize, key);
        let slot = dynamic.find_or_insert(key, shape, config.max_dynamic_descriptors, *model, now);
        hit.slot = slot;
        hit.generation = dynamic.slots[slot as usize].generation;
        dynamic.slots[slot as usize].level.consume(shape, 1.0, now)
    }
}

/// Builds the descriptors of a request, one per `rate_limits` entry whose
/// actions all produce an entry, and the entry of each.
fn build_descriptors(
    rate_limits: &[RateLimitActions],
    request: &RequestAttrs<'_>,
    descriptors: &mut DescriptorBuffer,
    entries: &mut Vec<Option<usize>>,
) {
    descriptors.clear();
    entries.clear();
    for (index, entry) in rate_limits.iter().enumerate() {
        if descriptors.push_entry(entry, request) {
            entries.push(Some(index));
        }
    }
}

/// Returns the key of the per-value bucket of request descriptor `index`:
/// its values joined by U+001F, built in `scratch` when it has several.
fn bucket_key<'a>(
    descriptors: &'a DescriptorBuffer,
    index: usize,
    scratch: &'a mut String,
) -> &'a str {
    // A one-entry descriptor's key is its value, so it needs no copy.
    if descriptors.entry_count(index) == 1 {
        return descriptors.value(index, 0);
    }
    scratch.clear();
    for (position, (_, value)) in descriptors.entries(index).enumerate() {
        if position > 0 {
            scratch.push('\u{1f}');
        }
        scratch.push_str(value);
    }
    scratch
}

fn is_wildcard(descriptor: &LocalDescriptor) -> bool {
    descriptor.entries.iter().any(|entry| entry.value.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{
        DescriptorEntry, HeaderMatcher, RateLimitAction, RateLimitActions, StringMatch,
    };
    use crate::time::SimDuration;

    fn spec(max: u32, per_fill: u32, interval_ms: u64) -> TokenBucketSpec {
        TokenBucketSpec {
            max_tokens: max,
            tokens_per_fill: per_fill,
            fill_interval: SimDuration::from_millis(interval_ms),
        }
    }

    fn at_ms(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn bucket_starts_full_and_refills_continuously() {
        // 5 per minute: five at once, then one every 12 s.
        let mut bucket = TokenBucket::new(&spec(5, 5, 60_000), RefillModel::Continuous, at_ms(0));
        for _ in 0..5 {
            assert!(bucket.consume(1.0, at_ms(0)));
        }
        assert!(!bucket.consume(1.0, at_ms(0)));
        assert!(!bucket.consume(1.0, at_ms(11_999)));
        assert!(bucket.consume(1.0, at_ms(12_500)));
        assert!(!bucket.consume(1.0, at_ms(12_500)));
    }

    #[test]
    fn bucket_matches_envoy_vectors() {
        // max 10, 1 per second: the all-or-nothing and fractional cases.
        let mut bucket = TokenBucket::new(&spec(10, 1, 1_000), RefillModel::Continuous, at_ms(0));
        assert!(!bucket.consume(20.0, at_ms(0)));
        assert!(bucket.consume(9.0, at_ms(0)));
        assert!(bucket.consume(1.0, at_ms(0)));
        assert!(!bucket.consume(1.0, at_ms(999)));
        assert!(!bucket.consume(6.0, at_ms(5_999)));
        assert!(bucket.consume(6.0, at_ms(6_000)));
        assert!(!bucket.consume(1.0, at_ms(6_000)));
        // max 3 at 1 per second: capped after a long idle time.
        let mut capped = TokenBucket::new(&spec(3, 1, 1_000), RefillModel::Continuous, at_ms(0));
        assert!(capped.consume(3.0, at_ms(0)));
        assert!(!capped.consume(4.0, at_ms(10_000)));
        assert!(capped.consume(3.0, at_ms(10_000)));
    }

    #[test]
    fn fill_rate_has_a_floor_of_one_per_year() {
        let two_years = TokenBucketSpec {
            max_tokens: 1,
            tokens_per_fill: 1,
            fill_interval: SimDuration::from_secs(2 * 31_536_000),
        };
        let mut bucket = TokenBucket::new(&two_years, RefillModel::Continuous, SimTime::ZERO);
        assert!(bucket.consume(1.0, SimTime::ZERO));
        let almost = SimTime::from_nanos((31_536_000 - 1) * 1_000_000_000);
        assert!(!bucket.consume(1.0, almost));
        let year = SimTime::from_nanos(31_536_000 * 1_000_000_000);
        assert!(bucket.consume(1.0, year));
    }

    #[test]
    fn timer_model_refills_in_whole_intervals() {
        let mut bucket = TokenBucket::new(&spec(5, 5, 60_000), RefillModel::Timer, at_ms(0));
        for _ in 0..5 {
            assert!(bucket.consume(1.0, at_ms(0)));
        }
        assert!(!bucket.consume(1.0, at_ms(12_500)));
        assert!(!bucket.consume(1.0, at_ms(59_999)));
        for _ in 0..5 {
            assert!(bucket.consume(1.0, at_ms(60_000)));
        }
        assert!(!bucket.consume(1.0, at_ms(60_000)));
    }

    fn header_entry(key: &str) -> RateLimitActions {
        RateLimitActions {
            actions: vec![RateLimitAction::RequestHeaders {
                header_name: "x-user-id".into(),
                descriptor_key: key.into(),
            }],
            hits_addend: None,
            apply_on_stream_done: false,
        }
    }

    fn per_user(limit: u32, lru: usize) -> LocalRateLimit {
        LocalRateLimit {
            default_bucket: TokenBucketSpec {
                max_tokens: u32::MAX,
                tokens_per_fill: u32::MAX,
                fill_interval: SimDuration::from_secs(1),
            },
            descriptors: vec![LocalDescriptor {
                entries: vec![DescriptorEntry {
                    key: "rule-0-match-0".into(),
                    value: None,
                }],
                bucket: spec(limit, limit, 60_000),
                shadow_mode: false,
            }],
            rate_limits: vec![header_entry("rule-0-match-0")],
            always_consume_default_token_bucket: false,
            max_dynamic_descriptors: lru,
            status: 429,
        }
    }

    fn user_descriptor(user: &str) -> Vec<Descriptor> {
        vec![vec![("rule-0-match-0".to_string(), user.to_string())]]
    }

    #[test]
    fn distinct_users_get_their_own_buckets() {
        let mut limiter =
            LocalLimiter::new(&per_user(3, 20), RefillModel::Continuous, SimTime::ZERO);
        for user in ["alice", "bob"] {
            let outcomes: Vec<Decision> = (0..5)
                .map(|_| limiter.check_descriptors(&user_descriptor(user), SimTime::ZERO))
                .collect();
            assert_eq!(
                outcomes,
                [
                    Decision::Allowed,
                    Decision::Allowed,
                    Decision::Allowed,
                    Decision::Limited,
                    Decision::Limited
                ]
            );
        }
    }

    #[test]
    fn lru_evicts_after_twenty_other_values() {
        // Measured on Envoy 1.40: 19 other users keep u0's bucket, 20 evict it.
        for (others, expected_second) in [(19, Decision::Limited), (20, Decision::Allowed)] {
            let mut limiter =
                LocalLimiter::new(&per_user(2, 20), RefillModel::Continuous, SimTime::ZERO);
            let now = SimTime::ZERO;
            assert_eq!(
                limiter.check_descriptors(&user_descriptor("u0"), now),
                Decision::Allowed
            );
            assert_eq!(
                limiter.check_descriptors(&user_descriptor("u0"), now),
                Decision::Allowed
            );
            for other in 0..others {
                limiter.check_descriptors(&user_descriptor(&format!("other{other}")), now);
            }
            assert_eq!(
                limiter.check_descriptors(&user_descriptor("u0"), now),
                expected_second
            );
        }
    }

    #[test]
    fn two_dynamic_slots_share_a_cache_line() {
        assert_eq!(std::mem::size_of::<DynamicSlot>(), 32);
    }

    #[test]
    fn lru_matches_a_simple_model() {
        // Random accesses over 8 keys with room for 3: after every access the
        // cached keys are exactly the 3 most recently used. Accesses reuse
        // the slot and generation remembered for the key while they are
        // current, as cached hits do, and they are often stale.
        let spec = spec(1, 1, 60_000);
        let mut state: u64 = 7;
        for capacity in [1usize, 2, 3, 5] {
            let mut lru = DynamicBuckets::default();
            let mut model: Vec<String> = Vec::new();
            let mut remembered: HashMap<String, (u32, u64)> = HashMap::new();
            for _ in 0..2_000 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let key = format!("k{}", (state >> 33) % 8);
                let use_stamp = !(state >> 40).is_multiple_of(5);
                match remembered.get(&key).copied() {
                    Some((slot, generation)) if use_stamp && lru.is_current(slot, generation) => {
                        assert_eq!(lru.keys[slot as usize], key);
                        lru.touch(slot);
                    }
                    _ => {
                        let slot = lru.find_or_insert(
                            &key,
                            &BucketShape::new(&spec),
                            capacity,
                            RefillModel::Continuous,
                            SimTime::ZERO,
                        );
                        let generation = lru.slots[slot as usize].generation;
                        remembered.insert(key.clone(), (slot, generation));
                    }
                }
                assert_eq!(lru.keys[lru.newest as usize], key);
                assert_eq!(lru.index[&key], lru.newest);
                model.retain(|k| *k != key);
                model.insert(0, key);
                model.truncate(capacity);
                let mut cached: Vec<&String> = lru.index.keys().collect();
                cached.sort();
                let mut expected: Vec<&String> = model.iter().collect();
                expected.sort();
                assert_eq!(cached, expected);
                // A current slot and generation name the key they were
                // taken for.
                for (key, &(slot, generation)) in &remembered {
                    if lru.is_current(slot, generation) {
                        assert_eq!(&lru.keys[slot as usize], key);
                    }
                }
            }
        }
    }

    #[test]
    fn unmatched_requests_use_the_default_bucket() {
        let mut config = per_user(3, 20);
        config.default_bucket = spec(2, 2, 60_000);
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let none: Vec<Descriptor> = Vec::new();
        assert_eq!(
            limiter.check_descriptors(&none, SimTime::ZERO),
            Decision::Allowed
        );
        assert_eq!(
            limiter.check_descriptors(&none, SimTime::ZERO),
            Decision::Allowed
        );
        assert_eq!(
            limiter.check_descriptors(&none, SimTime::ZERO),
            Decision::Limited
        );
        // A matched request does not touch the default bucket.
        assert_eq!(
            limiter.check_descriptors(&user_descriptor("alice"), SimTime::ZERO),
            Decision::Allowed
        );
    }

    #[test]
    fn always_consume_default_charges_matched_requests_too() {
        let mut config = per_user(100, 20);
        config.default_bucket = spec(10, 10, 60_000);
        config.always_consume_default_token_bucket = true;
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let none: Vec<Descriptor> = Vec::new();
        for _ in 0..10 {
            assert_eq!(
                limiter.check_descriptors(&none, SimTime::ZERO),
                Decision::Allowed
            );
        }
        assert_eq!(
            limiter.check_descriptors(&user_descriptor("dave"), SimTime::ZERO),
            Decision::Limited
        );
    }

    #[test]
    fn strictest_bucket_is_checked_first_without_refund() {
        // D2 = {hello=world, foo=bar} 1/s; D1 = {foo2=bar2} 2/s.
        let config = LocalRateLimit {
            default_bucket: spec(3, 3, 50),
            descriptors: vec![
                LocalDescriptor {
                    entries: vec![
                        DescriptorEntry {
                            key: "hello".into(),
                            value: Some("world".into()),
                        },
                        DescriptorEntry {
                            key: "foo".into(),
                            value: Some("bar".into()),
                        },
                    ],
                    bucket: spec(1, 1, 1_000),
                    shadow_mode: false,
                },
                LocalDescriptor {
                    entries: vec![DescriptorEntry {
                        key: "foo2".into(),
                        value: Some("bar2".into()),
                    }],
                    bucket: spec(2, 2, 1_000),
                    shadow_mode: false,
                },
            ],
            rate_limits: Vec::new(),
            always_consume_default_token_bucket: false,
            max_dynamic_descriptors: 20,
            status: 429,
        };
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let d2 = vec![
            ("hello".to_string(), "world".to_string()),
            ("foo".to_string(), "bar".to_string()),
        ];
        let d1 = vec![("foo2".to_string(), "bar2".to_string())];
        let both = vec![d1.clone(), d2.clone()];
        let now = SimTime::ZERO;
        assert_eq!(limiter.check_descriptors(&both, now), Decision::Allowed);
        // D2 rejects first, so D1 keeps its remaining token.
        assert_eq!(limiter.check_descriptors(&both, now), Decision::Limited);
        assert_eq!(
            limiter.check_descriptors(std::slice::from_ref(&d1), now),
            Decision::Allowed
        );
        assert_eq!(limiter.check_descriptors(&[d1], now), Decision::Limited);
    }

    #[test]
    fn shadow_mode_counts_but_allows() {
        let mut config = per_user(1, 20);
        config.descriptors[0].shadow_mode = true;
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let alice = user_descriptor("alice");
        assert_eq!(
            limiter.check_descriptors(&alice, SimTime::ZERO),
            Decision::Allowed
        );
        assert_eq!(
            limiter.check_descriptors(&alice, SimTime::ZERO),
            Decision::ShadowLimited
        );
    }

    #[test]
    fn check_builds_descriptors_from_headers() {
        let mut config = per_user(1, 20);
        config.rate_limits = vec![RateLimitActions {
            actions: vec![RateLimitAction::HeaderValueMatch {
                descriptor_key: "rule-0-match-0".into(),
                descriptor_value: "rule-0-match-0".into(),
                expect_match: true,
                headers: vec![HeaderMatcher {
                    name: "x-user-id".into(),
                    matcher: StringMatch::Exact("*".into()),
                    invert: false,
                }],
            }],
            hits_addend: None,
            apply_on_stream_done: false,
        }];
        config.descriptors[0].entries[0].value = Some("rule-0-match-0".into());
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let headers = [("x-user-id".to_string(), "alice".to_string())];
        let request = RequestAttrs {
            host: "h",
            path: "/",
            method: "GET",
            headers: &headers,
            source_ip: "10.0.0.1".parse().unwrap(),
        };
        for _ in 0..5 {
            assert_eq!(limiter.check(&request, SimTime::ZERO), Decision::Allowed);
        }
    }

    fn user_headers(user: &str) -> [(String, String); 1] {
        [("x-user-id".to_string(), user.to_string())]
    }

    fn attrs(headers: &[(String, String)]) -> RequestAttrs<'_> {
        RequestAttrs {
            host: "h",
            path: "/",
            method: "GET",
            headers,
            source_ip: "10.0.0.1".parse().unwrap(),
        }
    }

    fn user_key(variant: u32) -> AttrsKey {
        AttrsKey { client: 0, variant }
    }

    #[test]
    fn repeated_check_reuses_the_matched_bucket() {
        let config = per_user(3, 20);
        let mut cached = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let mut uncached = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let (alice, bob) = (user_headers("alice"), user_headers("bob"));
        for _ in 0..5 {
            let now = SimTime::ZERO;
            assert_eq!(
                cached.check_repeated(&|| attrs(&alice), user_key(1), now),
                uncached.check(&attrs(&alice), now)
            );
            // An unkeyed request in between leaves its own descriptors in
            // the buffer.
            assert_eq!(
                cached.check(&attrs(&bob), now),
                uncached.check(&attrs(&bob), now)
            );
        }
        let hits = cached.cache.hits_of(user_key(1));
        assert_eq!(hits.len(), 1);
        assert_ne!(hits[0].slot, NONE);
        // Later requests of alice were decided from the cache alone, so the
        // buffer still contains bob's descriptor.
        assert_eq!(cached.descriptors.value(0, 0), "bob");
        assert_eq!(
            cached.check_repeated(&|| attrs(&alice), user_key(1), SimTime::ZERO),
            Decision::Limited
        );
    }

    #[test]
    fn repeated_check_finds_an_evicted_bucket_again() {
        // Room for one user: alice and bob evict each other on every
        // request, so each finds the slot it remembers reused.
        let config = per_user(2, 1);
        let mut cached = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let mut uncached = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let (alice, bob) = (user_headers("alice"), user_headers("bob"));
        let mut generations = Vec::new();
        for round in 0..4 {
            let now = at_ms(round);
            for (variant, headers) in [(1, &alice), (1, &alice), (2, &bob)] {
                assert_eq!(
                    cached.check_repeated(&|| attrs(headers), user_key(variant), now),
                    uncached.check(&attrs(headers), now)
                );
            }
            generations.push(cached.cache.hits_of(user_key(1))[0].generation);
        }
        assert_eq!(cached.evictions(), uncached.evictions());
        assert_eq!(cached.evictions(), 7);
        // Each round alice found her bucket evicted and took the slot again.
        assert_eq!(generations, [0, 2, 4, 6]);
    }

    #[test]
    fn repeated_check_unmatched_uses_default_bucket() {
        let mut config = per_user(3, 20);
        config.default_bucket = spec(2, 2, 60_000);
        let mut limiter = LocalLimiter::new(&config, RefillModel::Continuous, SimTime::ZERO);
        let outcomes: Vec<Decision> = (0..3)
            .map(|_| limiter.check_repeated(&|| attrs(&[]), user_key(0), SimTime::ZERO))
            .collect();
        assert_eq!(
            outcomes,
            [Decision::Allowed, Decision::Allowed, Decision::Limited]
        );
    }
}
