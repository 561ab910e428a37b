//! Clients: when each instance sends, and what it does with a response.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use super::call::{Call, CallRequest};
use super::{Event, Slab, Truncation, World};
use crate::client_retry;
use crate::rng::{self, Stream, Streams};
use crate::scenario::{ClientKind, ClientSpec, Connection, OpenArrival, Scenario, Spread};
use crate::time::{SimDuration, SimTime};

/// One running copy of a client definition.
pub(crate) struct Instance {
    pub group: u32,
    /// Number among the instances of its definition.
    pub index: u32,
    pub method: Box<str>,
    pub path: Box<str>,
    pub host: Box<str>,
    pub headers: Box<[(String, String)]>,
    /// True when headers or path contain `{user}` (open clients with users).
    pub per_user: bool,
    /// Headers and path already expanded, and the route they match,
    /// indexed by user, so a returning user costs no allocation and no
    /// route matching. Users from [`USER_CACHE_CAPACITY`] on are expanded
    /// on every request.
    pub user_cache: Vec<Option<CachedUser>>,
    /// The route the instance's own headers and path match, once looked
    /// up, and `Some(None)` when no route matches. See [`matched_route`].
    ///
    /// [`matched_route`]: super::proxy::matched_route
    pub own_route: Option<Option<u32>>,
    pub source_ip: IpAddr,
    pub rng: Stream,
    /// Draws of the replica (random spread) and worker (per-request
    /// connections), apart from `rng` so that a different replica or worker
    /// count leaves the client's requests and timing unchanged.
    pub routing_rng: Stream,
    pub sent: u64,
    pub in_flight: u32,
    pub done_sending: bool,
    pub finished: bool,
    /// Next trace row to send.
    pub trace_cursor: usize,
    /// Replica for sticky spread.
    pub sticky_replica: u32,
}

struct GroupState {
    first_instance: u32,
    count: u32,
    finished: u32,
    started: bool,
    /// Groups that start when this one has finished.
    dependents: Vec<u32>,
}

pub(crate) struct Workload {
    pub instances: Vec<Instance>,
    /// Calls in progress, and finished calls still referenced by requests
    /// in flight.
    pub calls: Slab<Call>,
    groups: Vec<GroupState>,
    /// Groups not yet finished (started or not).
    unfinished_groups: usize,
    /// The replica the next request goes to under round-robin spread,
    /// advanced for every request whatever the spread.
    next_replica: u32,
    pub truncated: Option<Truncation>,
}

/// The headers and path of one user's requests.
pub(crate) type UserRequest = (Box<[(String, String)]>, Box<str>);

/// A user in an instance's user cache.
#[derive(Clone, Debug)]
pub(crate) struct CachedUser {
    pub request: UserRequest,
    /// The route the user's requests match, as [`Instance::own_route`]
    /// has it for the instance's own.
    pub route: Option<Option<u32>>,
}

/// Users whose expanded requests one instance keeps.
const USER_CACHE_CAPACITY: usize = 65_536;

/// Expands `{user}` in a client's headers and path.
fn expand_user(headers: &[(String, String)], path: &str, user: u64) -> UserRequest {
    let text = user.to_string();
    let headers = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{user}", &text)))
        .collect();
    (headers, path.replace("{user}", &text).into())
}

fn expand(template: &str, index: u32) -> String {
    template.replace("{index}", &index.to_string())
}

fn default_source_ip(global_index: u32) -> IpAddr {
    let n = global_index.wrapping_add(1);
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

impl Workload {
    pub fn new(scenario: &Scenario, streams: &Streams) -> Workload {
        let mut instances = Vec::new();
        let mut groups: Vec<GroupState> = Vec::new();
        let mut placement = streams.stream("placement", 0);
        for (group, client) in scenario.clients.iter().enumerate() {
            let first_instance = instances.len() as u32;
            for index in 0..client.count {
                instances.push(new_instance(
                    client,
                    group as u32,
                    index,
                    instances.len() as u32,
                    scenario.envoy.replicas,
                    streams,
                    &mut placement,
                ));
            }
            groups.push(GroupState {
                first_instance,
                count: client.count,
                finished: 0,
                started: false,
                dependents: Vec::new(),
            });
        }
        for (group, client) in scenario.clients.iter().enumerate() {
            if let Some(after) = client.after {
                groups[after].dependents.push(group as u32);
            }
        }
        Workload {
            unfinished_groups: groups.len(),
            instances,
            calls: Slab::default(),
            groups,
            next_replica: 0,
            truncated: None,
        }
    }

    pub fn all_done(&self) -> bool {
        self.unfinished_groups == 0
    }
}

fn new_instance(
    client: &ClientSpec,
    group: u32,
    index: u32,
    global_index: u32,
    replicas: u32,
    streams: &Streams,
    placement: &mut Stream,
) -> Instance {
    let template = &client.request;
    let headers: Vec<(String, String)> = template
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), expand(value, index)))
        .collect();
    let path = expand(&template.path, index);
    let per_user = headers.iter().any(|(_, v)| v.contains("{user}")) || path.contains("{user}");
    let source_ip = if template.source_ip.contains("{index_hi}") {
        default_source_ip(global_index)
    } else {
        expand(&template.source_ip, index)
            .parse()
            .unwrap_or_else(|_| default_source_ip(global_index))
    };
    Instance {
        group,
        index,
        method: template.method.as_str().into(),
        path: path.into(),
        host: expand(&template.host, index).into(),
        headers: headers.into(),
        per_user,
        user_cache: Vec::new(),
        own_route: None,
        source_ip,
        rng: streams.stream(&format!("client/{}", client.name), u64::from(index)),
        routing_rng: streams.stream(&format!("routing/{}", client.name), u64::from(index)),
        sent: 0,
        in_flight: 0,
        done_sending: false,
        finished: false,
        trace_cursor: 0,
        sticky_replica: rng::below(placement, u64::from(replicas.max(1))) as u32,
    }
}

fn seconds(value: f64) -> SimDuration {
    SimDuration::from_secs_rounded(value)
}

/// Chooses the Envoy worker that serves the keep-alive connection of client
/// worker `slot` to `replica`, by hashing the four numbers.
///
/// Kept out of line, because formatting the key makes it large, so that
/// `pick_envoy` is small enough to inline.
#[inline(never)]
fn keep_alive_worker(group: u32, index: u32, slot: u32, replica: u32, workers: u32) -> u32 {
    let mut key = rng::Fnv1a::new();
    // Writing into a hasher cannot fail.
    let _ = write!(key, "{group}/{index}/{slot}/{replica}");
    (key.finish() % u64::from(workers)) as u32
}

impl World<'_> {
    /// Starts every instance of a client definition.
    pub(super) fn start_group(&mut self, group: usize) {
        let state = &mut self.workload.groups[group];
        if state.started {
            return;
        }
        state.started = true;
        let first = state.first_instance;
        let count = state.count;
        let client = &self.scenario.clients[group];
        for offset in 0..count {
            let instance = first + offset;
            match &client.kind {
                ClientKind::Closed { concurrency, .. } => {
                    for slot in 0..*concurrency {
                        self.queue
                            .schedule_in(SimDuration::ZERO, Event::ClientSend { instance, slot });
                    }
                }
                ClientKind::Trace { rows, speedup, .. } => {
                    if let Some(row) = rows.first() {
                        let offset = seconds(row.offset.as_secs_f64() / speedup);
                        self.queue
                            .schedule_in(offset, Event::ClientSend { instance, slot: 0 });
                    }
                }
                _ => self
                    .queue
                    .schedule_in(SimDuration::ZERO, Event::ClientSend { instance, slot: 0 }),
            }
        }
        if count == 0 {
            self.group_finished(group);
        }
    }

    fn stop_time(&self, client: &ClientSpec) -> SimTime {
        let mut stop = match self.scenario.duration {
            Some(duration) => SimTime::ZERO + duration,
            None => SimTime::MAX,
        };
        if let Some(client_stop) = client.stop {
            stop = stop.min(SimTime::ZERO + client_stop);
        }
        stop
    }

    /// Handles `ClientSend`: sends one request if the client still may.
    pub(super) fn client_send(&mut self, instance_index: u32, slot: u32) {
        let instance = &self.workload.instances[instance_index as usize];
        if instance.done_sending {
            return;
        }
        let client = &self.scenario.clients[instance.group as usize];
        let now = self.now();
        if now >= self.stop_time(client) {
            self.stop_sending(instance_index);
            return;
        }
        let limit = match &client.kind {
            ClientKind::Sequential { requests, .. } | ClientKind::Closed { requests, .. } => {
                Some(*requests)
            }
            ClientKind::Open { requests, .. } | ClientKind::Agent { requests, .. } => *requests,
            ClientKind::Trace { rows, .. } => Some(rows.len() as u64),
        };
        if limit.is_some_and(|limit| instance.sent >= limit) {
            self.stop_sending(instance_index);
            return;
        }

        let mut trace_tokens = None;
        let mut user = None;
        match &client.kind {
            ClientKind::Open {
                mean_gap_s,
                arrival,
                users,
                ..
            } => {
                let instance = &mut self.workload.instances[instance_index as usize];
                if let Some(users) = users {
                    user = Some(rng::below(&mut instance.rng, u64::from(*users)));
                }
                let gap = match arrival {
                    OpenArrival::Constant => *mean_gap_s,
                    OpenArrival::Poisson => rng::exp1(&mut instance.rng) * mean_gap_s,
                };
                // A gap below a nanosecond would stall the clock; one
                // nanosecond is the resolution of simulated time.
                let gap = seconds(gap).max(SimDuration::from_nanos(1));
                self.queue.schedule_in(
                    gap,
                    Event::ClientSend {
                        instance: instance_index,
                        slot,
                    },
                );
            }
            ClientKind::Trace { rows, speedup, .. } => {
                let instance = &mut self.workload.instances[instance_index as usize];
                let row = rows[instance.trace_cursor];
                trace_tokens = Some((row.input_tokens, row.output_tokens));
                instance.trace_cursor += 1;
                if let Some(next) = rows.get(instance.trace_cursor) {
                    let at = SimTime::ZERO + seconds(next.offset.as_secs_f64() / speedup);
                    let start = client.start;
                    self.queue.schedule_at(
                        at + start,
                        Event::ClientSend {
                            instance: instance_index,
                            slot,
                        },
                    );
                }
            }
            _ => {}
        }
        self.issue_request(instance_index, slot, user, trace_tokens);
        let instance = &self.workload.instances[instance_index as usize];
        if limit.is_some_and(|limit| instance.sent >= limit) {
            self.stop_sending(instance_index);
        }
    }

    fn issue_request(
        &mut self,
        instance_index: u32,
        slot: u32,
        user: Option<u64>,
        trace_tokens: Option<(Option<u64>, Option<u64>)>,
    ) {
        let route = self.pick_envoy(instance_index, slot);
        let now = self.queue.now();
        let instance = &mut self.workload.instances[instance_index as usize];
        let client = &self.scenario.clients[instance.group as usize];
        let (input_tokens, output_tokens) = match trace_tokens {
            Some((input, output)) => (input.unwrap_or(0), output.unwrap_or(0)),
            None => {
                let template = &client.request;
                let input = template
                    .input_tokens
                    .as_ref()
                    .map_or(0, |d| d.sample(&mut instance.rng).round() as u64);
                let output = template
                    .output_tokens
                    .as_ref()
                    .map_or(0, |d| d.sample(&mut instance.rng).round() as u64);
                (input, output)
            }
        };
        let request = match user {
            Some(user) if instance.per_user => {
                let slot = usize::try_from(user)
                    .ok()
                    .filter(|slot| *slot < USER_CACHE_CAPACITY);
                match slot {
                    Some(slot) => {
                        if instance.user_cache.len() <= slot {
                            instance.user_cache.resize(slot + 1, None);
                        }
                        if instance.user_cache[slot].is_none() {
                            instance.user_cache[slot] = Some(CachedUser {
                                request: expand_user(&instance.headers, &instance.path, user),
                                route: None,
                            });
                        }
                        CallRequest::User(slot as u32)
                    }
                    None => CallRequest::Expanded(Box::new(expand_user(
                        &instance.headers,
                        &instance.path,
                        user,
                    ))),
                }
            }
            _ => CallRequest::Own,
        };
        instance.sent += 1;
        instance.in_flight += 1;
        let group = instance.group;
        let previous_wait = client
            .retries
            .as_ref()
            .map_or(SimDuration::ZERO, client_retry::first_previous_wait);
        let call = self.workload.calls.insert(Call {
            instance: instance_index,
            slot,
            started: now,
            tries: 0,
            current: None,
            previous_wait,
            executions: 0,
            refs: 0,
            finished: false,
            request,
            input_tokens,
            output_tokens,
        });
        self.metrics
            .record_sent(group as usize, instance.index, now);
        self.send_try(call, Some(route));
    }

    /// Chooses the Envoy replica and worker for a new request of an
    /// instance, as the scenario's spread and the client's connection reuse
    /// decide.
    #[inline(always)]
    pub(super) fn pick_envoy(&mut self, instance_index: u32, slot: u32) -> (u32, u32) {
        let replicas = self.scenario.envoy.replicas;
        let workers = self.scenario.envoy.workers;
        let spread = self.scenario.envoy.spread;
        // Counting modulo `replicas` gives the replica without a division.
        let round_robin = self.workload.next_replica;
        self.workload.next_replica = if round_robin + 1 >= replicas {
            0
        } else {
            round_robin + 1
        };
        let instance = &mut self.workload.instances[instance_index as usize];
        let client = &self.scenario.clients[instance.group as usize];
        let replica = match spread {
            Spread::RoundRobin => round_robin,
            Spread::Random => rng::below(&mut instance.routing_rng, u64::from(replicas)) as u32,
            Spread::Sticky => instance.sticky_replica,
        };
        let worker = match client.connection {
            Connection::KeepAlive => {
                keep_alive_worker(instance.group, instance.index, slot, replica, workers)
            }
            Connection::PerRequest => {
                rng::below(&mut instance.routing_rng, u64::from(workers)) as u32
            }
        };
        (replica, worker)
    }

    /// Schedules an instance's next send after one of its calls ended, as
    /// its kind decides, and marks the instance done when it is.
    pub(super) fn after_call(&mut self, instance_index: u32, slot: u32, status: u16) {
        let instance = &mut self.workload.instances[instance_index as usize];
        instance.in_flight = instance.in_flight.saturating_sub(1);
        let client = &self.scenario.clients[instance.group as usize];
        let next_delay = match &client.kind {
            ClientKind::Sequential { think_time, .. } | ClientKind::Closed { think_time, .. } => {
                Some(seconds(think_time.sample(&mut instance.rng)))
            }
            ClientKind::Agent {
                think_time,
                retry_delay,
                ..
            } => {
                let dist = if (200..300).contains(&status) {
                    think_time
                } else {
                    retry_delay
                };
                Some(seconds(dist.sample(&mut instance.rng)))
            }
            ClientKind::Open { .. } | ClientKind::Trace { .. } => None,
        };
        if let Some(delay) = next_delay
            && !instance.done_sending
        {
            self.queue.schedule_in(
                delay,
                Event::ClientSend {
                    instance: instance_index,
                    slot,
                },
            );
        }
        self.maybe_finish(instance_index);
    }

    fn stop_sending(&mut self, instance_index: u32) {
        self.workload.instances[instance_index as usize].done_sending = true;
        self.maybe_finish(instance_index);
    }

    fn maybe_finish(&mut self, instance_index: u32) {
        let instance = &mut self.workload.instances[instance_index as usize];
        if instance.finished || !instance.done_sending || instance.in_flight > 0 {
            return;
        }
        instance.finished = true;
        let group = instance.group as usize;
        self.workload.groups[group].finished += 1;
        if self.workload.groups[group].finished == self.workload.groups[group].count {
            self.group_finished(group);
        }
    }

    fn group_finished(&mut self, group: usize) {
        self.workload.unfinished_groups = self.workload.unfinished_groups.saturating_sub(1);
        let dependents = self.workload.groups[group].dependents.clone();
        for dependent in dependents {
            let start = self.scenario.clients[dependent as usize].start;
            self.queue
                .schedule_in(start, Event::GroupStart { group: dependent });
        }
    }
}
