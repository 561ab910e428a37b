//! Envoy's load balancers: which host of a cluster gets the next request.
//!
//! One [`Balancer`] exists per cluster, per worker, per replica, as Envoy
//! keeps load-balancer state per worker thread. Hosts are grouped by the
//! HTTPRoute backendRef they come from (Envoy Gateway programs each as a
//! locality with the backendRef's weight): a group is chosen by smooth
//! weighted round robin, then a host within it by the policy. Hosts the
//! outlier detector ejected are skipped unless fewer than the panic
//! threshold are healthy, in which case Envoy uses all hosts.

use crate::gateway::{HashOn, LoadBalancer};
use crate::rng::{self, Stream};

/// Per-host facts the balancer reads, indexed by the cluster's host order.
pub struct HostView<'a> {
    /// Requests active on each host in this replica.
    pub active: &'a [u32],
    pub healthy: &'a [bool],
}

/// The outcome of a pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Index into the cluster's hosts.
    pub host: usize,
    /// The pick was made in panic mode (stat `lb_healthy_panic`).
    pub panic: bool,
}

pub struct Balancer {
    policy: LoadBalancer,
    /// Host indices of each group.
    groups: Vec<Vec<usize>>,
    weights: Vec<i64>,
    /// Smooth weighted round robin state per group.
    current: Vec<i64>,
    round_robin_next: Vec<u64>,
    /// Maglev lookup tables per group, built on first use.
    maglev: Vec<Option<Vec<u32>>>,
    panic_threshold: f64,
    scratch: Vec<usize>,
}

impl Balancer {
    /// `groups` lists the host indices of each backendRef with its weight.
    /// Round robin starts each group at a random host, as each Envoy worker
    /// does.
    pub fn new(
        policy: &LoadBalancer,
        groups: Vec<(Vec<usize>, u32)>,
        panic_threshold: f64,
        rng: &mut Stream,
    ) -> Balancer {
        let round_robin_next = groups
            .iter()
            .map(|(hosts, _)| rng::below(rng, hosts.len().max(1) as u64))
            .collect();
        Balancer {
            policy: policy.clone(),
            weights: groups.iter().map(|(_, w)| i64::from(*w)).collect(),
            current: vec![0; groups.len()],
            maglev: vec![None; groups.len()],
            groups: groups.into_iter().map(|(hosts, _)| hosts).collect(),
            round_robin_next,
            panic_threshold,
            scratch: Vec::new(),
        }
    }

    /// Chooses a host; `None` when the cluster has no host at all.
    /// `hash` is the request's hash for consistent hashing.
    pub fn pick(
        &mut self,
        view: &HostView<'_>,
        hash: Option<u64>,
        rng: &mut Stream,
    ) -> Option<Pick> {
        let group = self.pick_group()?;
        let hosts = &self.groups[group];
        if hosts.is_empty() {
            return None;
        }
        let healthy_count = hosts.iter().filter(|h| view.healthy[**h]).count();
        let all_healthy = healthy_count == hosts.len();
        // With every host healthy the percentage is exactly 100, so the
        // division is skipped.
        let healthy_percent = if all_healthy {
            100.0
        } else {
            100.0 * healthy_count as f64 / hosts.len() as f64
        };
        let panic = self.panic_threshold > 0.0 && healthy_percent < self.panic_threshold;
        // The candidates are all hosts in panic mode or when all are healthy,
        // and only then is no filtered copy needed.
        let candidates: &[usize] = if panic || all_healthy {
            hosts
        } else {
            self.scratch.clear();
            self.scratch
                .extend(hosts.iter().copied().filter(|h| view.healthy[*h]));
            &self.scratch
        };
        if candidates.is_empty() {
            return None;
        }
        let host = match &self.policy {
            LoadBalancer::RoundRobin => {
                let index = self.round_robin_next[group];
                self.round_robin_next[group] = index.wrapping_add(1);
                if candidates.len() == 1 {
                    // One candidate needs no division to pick it.
                    candidates[0]
                } else {
                    candidates[(index % candidates.len() as u64) as usize]
                }
            }
            LoadBalancer::Random => candidates[rng::below(rng, candidates.len() as u64) as usize],
            LoadBalancer::LeastRequest { choice_count } => {
                let mut best = candidates[rng::below(rng, candidates.len() as u64) as usize];
                for _ in 1..(*choice_count).max(1) {
                    let other = candidates[rng::below(rng, candidates.len() as u64) as usize];
                    if view.active[other] < view.active[best] {
                        best = other;
                    }
                }
                best
            }
            LoadBalancer::ConsistentHash { table_size, .. } => {
                let hash = hash.unwrap_or_else(|| rng::below(rng, u64::MAX));
                let table = self.maglev[group]
                    .get_or_insert_with(|| maglev_table(hosts.len(), *table_size));
                let slot = table[(hash % table.len() as u64) as usize] as usize;
                let chosen = hosts[slot];
                if panic || view.healthy[chosen] {
                    chosen
                } else {
                    // The table's host is ejected: walk on to the next
                    // usable entry, as Maglev's fallback does.
                    let mut found = candidates[0];
                    for step in 1..table.len() {
                        let index = ((hash % table.len() as u64) as usize + step) % table.len();
                        let host = hosts[table[index] as usize];
                        if view.healthy[host] {
                            found = host;
                            break;
                        }
                    }
                    found
                }
            }
        };
        Some(Pick { host, panic })
    }

    fn pick_group(&mut self) -> Option<usize> {
        if self.groups.len() <= 1 {
            return if self.groups.is_empty() {
                None
            } else {
                Some(0)
            };
        }
        let total: i64 = self.weights.iter().sum();
        if total <= 0 {
            return None;
        }
        let mut best = 0;
        for index in 0..self.groups.len() {
            self.current[index] += self.weights[index];
            if self.current[index] > self.current[best] {
                best = index;
            }
        }
        self.current[best] -= total;
        Some(best)
    }

    pub fn hash_on(&self) -> Option<&HashOn> {
        match &self.policy {
            LoadBalancer::ConsistentHash { hash_on, .. } => Some(hash_on),
            _ => None,
        }
    }
}

/// Builds a Maglev lookup table mapping each slot to a host position.
/// `table_size` is rounded up to a prime of at least `hosts`.
fn maglev_table(hosts: usize, table_size: u64) -> Vec<u32> {
    let size = next_prime(table_size.max(hosts as u64).max(2)) as usize;
    let mut table = vec![u32::MAX; size];
    if hosts == 0 {
        return vec![0];
    }
    let permutation: Vec<(usize, usize)> = (0..hosts)
        .map(|host| {
            let name = format!("host-{host}");
            let offset = (rng::fnv1a(name.as_bytes()) % size as u64) as usize;
            let skip =
                (rng::fnv1a(format!("{name}#skip").as_bytes()) % (size as u64 - 1) + 1) as usize;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0usize; hosts];
    let mut filled = 0;
    'fill: loop {
        for host in 0..hosts {
            let (offset, skip) = permutation[host];
            let mut slot = (offset + next[host] * skip) % size;
            while table[slot] != u32::MAX {
                next[host] += 1;
                slot = (offset + next[host] * skip) % size;
            }
            table[slot] = host as u32;
            next[host] += 1;
            filled += 1;
            if filled == size {
                break 'fill;
            }
        }
    }
    table
}

fn next_prime(mut n: u64) -> u64 {
    let is_prime = |n: u64| {
        if n < 2 {
            return false;
        }
        let mut d = 2;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    };
    while !is_prime(n) {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Streams;

    fn view<'a>(active: &'a [u32], healthy: &'a [bool]) -> HostView<'a> {
        HostView { active, healthy }
    }

    #[test]
    fn round_robin_cycles_through_hosts() {
        let mut rng = Streams::new(1).stream("lb", 0);
        let mut balancer = Balancer::new(
            &LoadBalancer::RoundRobin,
            vec![(vec![0, 1, 2, 3], 1)],
            50.0,
            &mut rng,
        );
        let active = [0; 4];
        let healthy = [true; 4];
        let picks: Vec<usize> = (0..8)
            .map(|_| {
                balancer
                    .pick(&view(&active, &healthy), None, &mut rng)
                    .unwrap()
                    .host
            })
            .collect();
        for host in 0..4 {
            assert_eq!(picks.iter().filter(|p| **p == host).count(), 2);
        }
        assert_eq!(picks[0], picks[4]);
    }

    #[test]
    fn least_request_prefers_idle_hosts() {
        let mut rng = Streams::new(2).stream("lb", 0);
        let policy = LoadBalancer::LeastRequest { choice_count: 2 };
        let mut balancer = Balancer::new(&policy, vec![(vec![0, 1, 2, 3], 1)], 50.0, &mut rng);
        let active = [10, 0, 0, 0];
        let healthy = [true; 4];
        let busy_picks = (0..16_000)
            .filter(|_| {
                balancer
                    .pick(&view(&active, &healthy), None, &mut rng)
                    .unwrap()
                    .host
                    == 0
            })
            .count();
        // Both draws land on host 0 one time in sixteen.
        assert!((800..1_200).contains(&busy_picks), "{busy_picks}");
    }

    #[test]
    fn ejected_hosts_are_skipped_until_panic() {
        let mut rng = Streams::new(3).stream("lb", 0);
        let mut balancer = Balancer::new(
            &LoadBalancer::Random,
            vec![(vec![0, 1, 2, 3], 1)],
            50.0,
            &mut rng,
        );
        let active = [0; 4];
        let one_down = [true, false, true, true];
        for _ in 0..100 {
            let pick = balancer
                .pick(&view(&active, &one_down), None, &mut rng)
                .unwrap();
            assert_ne!(pick.host, 1);
            assert!(!pick.panic);
        }
        let three_down = [true, false, false, false];
        let pick = balancer
            .pick(&view(&active, &three_down), None, &mut rng)
            .unwrap();
        assert!(pick.panic);
    }

    #[test]
    fn consistent_hash_is_sticky() {
        let mut rng = Streams::new(4).stream("lb", 0);
        let policy = LoadBalancer::ConsistentHash {
            hash_on: HashOn::SourceIp,
            table_size: 65_537,
        };
        let mut balancer = Balancer::new(&policy, vec![(vec![0, 1, 2], 1)], 50.0, &mut rng);
        let active = [0; 3];
        let healthy = [true; 3];
        let first = balancer
            .pick(&view(&active, &healthy), Some(12345), &mut rng)
            .unwrap();
        for _ in 0..10 {
            let again = balancer
                .pick(&view(&active, &healthy), Some(12345), &mut rng)
                .unwrap();
            assert_eq!(again, first);
        }
    }

    #[test]
    fn weighted_groups_split_by_weight() {
        let mut rng = Streams::new(5).stream("lb", 0);
        let mut balancer = Balancer::new(
            &LoadBalancer::RoundRobin,
            vec![(vec![0], 3), (vec![1], 1)],
            50.0,
            &mut rng,
        );
        let active = [0; 2];
        let healthy = [true; 2];
        let first = (0..400)
            .filter(|_| {
                balancer
                    .pick(&view(&active, &healthy), None, &mut rng)
                    .unwrap()
                    .host
                    == 0
            })
            .count();
        assert_eq!(first, 300);
    }
}
