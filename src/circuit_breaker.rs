//! Envoy's circuit breakers: the resource counters of one cluster in one
//! Envoy replica.
//!
//! Envoy keeps these counters per cluster, per priority, per Envoy process,
//! shared by all worker threads (`resource_manager_impl.h`). This module
//! only counts and answers "may I take one more?"; where each check happens
//! in a request's life (connection pool, router, retry state) is decided by
//! `conn_pool` and `sim`.

use crate::gateway::CircuitBreaker;

/// Current use of each limited resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Open or opening upstream connections.
    pub connections: u32,
    /// Requests queued for a connection.
    pub pending_requests: u32,
    /// Requests attached to a connection (active upstream streams).
    pub requests: u32,
    /// Retries scheduled or in flight.
    pub retries: u32,
}

/// The thresholds and usage of one cluster in one replica.
#[derive(Clone, Debug)]
pub struct Resources {
    pub limits: CircuitBreaker,
    pub usage: Usage,
    /// Highest concurrent use seen, for checking invariants.
    pub peak: Usage,
}

impl Resources {
    pub fn new(limits: &CircuitBreaker) -> Resources {
        Resources {
            limits: limits.clone(),
            usage: Usage::default(),
            peak: Usage::default(),
        }
    }

    pub fn can_open_connection(&self) -> bool {
        self.usage.connections < self.limits.max_connections
    }

    pub fn can_queue_pending(&self) -> bool {
        self.usage.pending_requests < self.limits.max_pending_requests
    }

    pub fn can_attach_request(&self) -> bool {
        self.usage.requests < self.limits.max_requests
    }

    /// The retry limit in force: the retry budget when configured, else
    /// `max_retries`.
    pub fn retry_limit(&self) -> u32 {
        match &self.limits.retry_budget {
            Some(budget) => {
                let base = f64::from(self.usage.requests + self.usage.pending_requests);
                let from_budget = (budget.budget_percent / 100.0 * base).floor() as u32;
                from_budget.max(budget.min_retry_concurrency)
            }
            None => self.limits.max_retries,
        }
    }

    pub fn can_retry(&self) -> bool {
        self.usage.retries < self.retry_limit()
    }

    pub fn open_connection(&mut self) {
        self.usage.connections += 1;
        self.peak.connections = self.peak.connections.max(self.usage.connections);
    }

    pub fn close_connection(&mut self) {
        debug_assert!(self.usage.connections > 0);
        self.usage.connections = self.usage.connections.saturating_sub(1);
    }

    pub fn queue_pending(&mut self) {
        self.usage.pending_requests += 1;
        self.peak.pending_requests = self.peak.pending_requests.max(self.usage.pending_requests);
    }

    pub fn leave_pending(&mut self) {
        debug_assert!(self.usage.pending_requests > 0);
        self.usage.pending_requests = self.usage.pending_requests.saturating_sub(1);
    }

    pub fn attach_request(&mut self) {
        self.usage.requests += 1;
        self.peak.requests = self.peak.requests.max(self.usage.requests);
    }

    pub fn finish_request(&mut self) {
        debug_assert!(self.usage.requests > 0);
        self.usage.requests = self.usage.requests.saturating_sub(1);
    }

    pub fn start_retry(&mut self) {
        self.usage.retries += 1;
        self.peak.retries = self.peak.retries.max(self.usage.retries);
    }

    pub fn end_retry(&mut self) {
        debug_assert!(self.usage.retries > 0);
        self.usage.retries = self.usage.retries.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::RetryBudget;

    #[test]
    fn limits_gate_each_resource() {
        let mut limits = CircuitBreaker::envoy_gateway_default();
        limits.max_requests = 2;
        limits.max_pending_requests = 0;
        let mut resources = Resources::new(&limits);
        assert!(!resources.can_queue_pending());
        assert!(resources.can_attach_request());
        resources.attach_request();
        resources.attach_request();
        assert!(!resources.can_attach_request());
        resources.finish_request();
        assert!(resources.can_attach_request());
        assert_eq!(resources.peak.requests, 2);
    }

    #[test]
    fn retry_budget_scales_with_load() {
        let mut limits = CircuitBreaker::envoy_gateway_default();
        limits.retry_budget = Some(RetryBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        });
        let mut resources = Resources::new(&limits);
        assert_eq!(resources.retry_limit(), 3);
        for _ in 0..50 {
            resources.attach_request();
        }
        assert_eq!(resources.retry_limit(), 10);
    }
}
