//! `manifest.json`: everything needed to replay a run and to know exactly
//! what was simulated, every parameter resolved and with its unit.

use serde_json::{Value, json};

use crate::gateway::{
    Cluster, GatewayModel, GlobalRateLimit, HitsAddend, LoadBalancer, LocalRateLimit, PathMatch,
    RateLimitAction, Route, RouteAction, TokenBucketSpec,
};
use crate::local_rate_limit::RefillModel;
use crate::scenario::{
    BackendWindow, ClientKind, ClientSpec, Connection, EndpointFailure, Fault, FaultKind,
    OpenArrival, RateLimitServiceSpec, Scenario,
};
use crate::time::SimDuration;

fn seconds(duration: SimDuration) -> f64 {
    duration.as_secs_f64()
}

/// The contents of `manifest.json` for a run of `scenario` with `seed`.
pub fn run_manifest(scenario: &Scenario, seed: u64, tool_version: &str) -> Value {
    let envoy = &scenario.envoy;
    json!({
        "tool": "trafficsim",
        "version": tool_version,
        "git_commit": option_env!("TRAFFICSIM_GIT_COMMIT").unwrap_or("unknown"),
        "scenario": scenario.name,
        "scenario_file": scenario.file.display().to_string(),
        "seed": seed,
        "duration_s": scenario.duration.map(seconds),
        "start_unix_s": scenario.start_unix_s,
        "envoy": {
            "version_modelled": "Envoy 1.40 as programmed by Envoy Gateway v1.9",
            "replicas": envoy.replicas,
            "workers_per_replica": envoy.workers,
            "spread": envoy.spread.name(),
            "token_bucket_refill": match envoy.token_bucket {
                RefillModel::Continuous => "continuous",
                RefillModel::Timer => "timer",
            },
            "client_latency_s": seconds(envoy.client_latency),
            "upstream_latency_s": seconds(envoy.upstream_latency),
            "connect_time_s": seconds(envoy.connect_time),
            "update_merge_window_s": seconds(envoy.update_merge_window),
            "max_dynamic_descriptors": envoy.max_dynamic_descriptors,
        },
        "rate_limit_service": rate_limit_service_json(&scenario.rate_limit_service),
        "rate_limit_mode": scenario.rate_limit_mode.map(|mode| mode.name()),
        "manifests": scenario.manifest_sources,
        "backends": scenario.backends.iter().map(|backend| json!({
            "name": backend.name,
            "namespace": backend.namespace,
            "endpoints": backend.endpoints,
            "concurrency_per_endpoint": backend.concurrency,
            "service_time": backend.service_time.to_json("s"),
            "per_output_token_s": seconds(backend.per_output_token),
            "errors": backend.errors.iter().map(|e| json!({
                "status": e.status, "probability": e.probability,
                "retry_after_s": e.retry_after.map(seconds),
            })).collect::<Vec<_>>(),
            "schedule": backend.schedule.iter().map(window_json).collect::<Vec<_>>(),
            "overload": backend.overload.map(|o| json!({
                "threshold": o.threshold, "slowdown_per_request": o.slowdown_per_request,
            })),
            "queue_capacity": backend.queue_capacity,
            "queue_full_status": backend.queue_full_status,
            "cost": {
                "per_request_usd": backend.cost.per_request_usd,
                "input_usd_per_million_tokens": backend.cost.input_usd_per_million,
                "output_usd_per_million_tokens": backend.cost.output_usd_per_million,
            },
        })).collect::<Vec<_>>(),
        "clients": scenario.clients.iter().map(|client| client_json(client, scenario)).collect::<Vec<_>>(),
        "gateway": model_json(&scenario.gateway),
        "output": {"bucket_s": seconds(scenario.output.bucket)},
        "limits": {
            "max_events": scenario.limits.max_events,
            "max_in_flight": scenario.limits.max_in_flight,
            "max_duration_s": seconds(scenario.limits.max_duration),
        },
    })
}

fn window_json(window: &BackendWindow) -> Value {
    json!({
        "from_s": seconds(window.from),
        "to_s": window.to.map(seconds),
        "endpoints": window.endpoints,
        "status": window.status,
        "error_probability": window.error_probability,
        "retry_after_s": window.retry_after.map(seconds),
        "add_delay_s": seconds(window.add_delay),
        "slowdown_factor": window.slowdown_factor,
        "failure": window.failure.map(|f| match f {
            EndpointFailure::Refuse => "refuse",
            EndpointFailure::NoAnswer => "no_answer",
            EndpointFailure::Reset => "reset",
        }),
    })
}

fn rate_limit_service_json(spec: &RateLimitServiceSpec) -> Value {
    json!({
        "replicas": spec.replicas,
        "network_latency_s": seconds(spec.network_latency),
        "service_time": spec.service_time.to_json("s"),
        "timeout_s": seconds(spec.timeout),
        "fail_closed": spec.fail_closed,
        "local_cache": spec.local_cache,
        "faults": spec.faults.iter().map(fault_json).collect::<Vec<_>>(),
        "redis": {
            "network_latency_s": seconds(spec.redis.network_latency),
            "service_time": spec.redis.service_time.to_json("s"),
            "faults": spec.redis.faults.iter().map(fault_json).collect::<Vec<_>>(),
        },
    })
}

fn fault_json(fault: &Fault) -> Value {
    let delay = match fault.kind {
        FaultKind::Slow { delay } => Some(seconds(delay)),
        FaultKind::Down | FaultKind::Partition => None,
    };
    json!({
        "kind": fault.kind.name(),
        "from_s": seconds(fault.from),
        "to_s": seconds(fault.to),
        "delay_s": delay,
        "replicas": fault.replicas,
    })
}

fn client_json(client: &ClientSpec, scenario: &Scenario) -> Value {
    let kind = match &client.kind {
        ClientKind::Sequential {
            requests,
            think_time,
        } => json!({
            "kind": "sequential", "requests": requests, "think_time": think_time.to_json("s"),
        }),
        ClientKind::Closed {
            requests,
            concurrency,
            think_time,
        } => json!({
            "kind": "closed", "requests": requests, "concurrency": concurrency,
            "think_time": think_time.to_json("s"),
        }),
        ClientKind::Open {
            rate_per_s,
            arrival,
            requests,
            users,
            ..
        } => json!({
            "kind": "open", "rate_per_s": rate_per_s,
            "arrival": match arrival { OpenArrival::Poisson => "poisson", OpenArrival::Constant => "constant" },
            "requests": requests, "users": users,
        }),
        ClientKind::Agent {
            think_time,
            retry_delay,
            requests,
        } => json!({
            "kind": "agent", "think_time": think_time.to_json("s"),
            "retry_delay": retry_delay.to_json("s"), "requests": requests,
        }),
        ClientKind::Trace {
            file,
            rows,
            speedup,
        } => json!({
            "kind": "trace", "file": file, "rows": rows.len(), "speedup": speedup,
        }),
    };
    let request = &client.request;
    json!({
        "name": client.name,
        "workload": kind,
        "instances": client.count,
        "start_s": seconds(client.start),
        "after": client.after.map(|index| scenario.clients[index].name.clone()),
        "stop_s": client.stop.map(seconds),
        "connection": match client.connection { Connection::KeepAlive => "keep-alive", Connection::PerRequest => "per-request" },
        "timeout_s": client.timeout.map(seconds),
        "retries": client.retries.as_ref().map(|r| json!({
            "max": r.max,
            "backoff": r.backoff.name(),
            "base_s": seconds(r.base),
            "cap_s": seconds(r.cap),
            "respect_retry_after": r.respect_retry_after,
            "statuses": r.statuses,
        })),
        "request": {
            "method": request.method,
            "path": request.path,
            "host": request.host,
            "headers": request.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "delay_s": request.delay.map(seconds),
            "source_ip": request.source_ip,
            "input_tokens": request.input_tokens.as_ref().map(|d| d.to_json("tokens")),
            "output_tokens": request.output_tokens.as_ref().map(|d| d.to_json("tokens")),
        },
    })
}

fn bucket_json(bucket: &TokenBucketSpec) -> Value {
    json!({
        "max_tokens": bucket.max_tokens,
        "tokens_per_fill": bucket.tokens_per_fill,
        "fill_interval_s": seconds(bucket.fill_interval),
    })
}

fn action_json(action: &RateLimitAction) -> Value {
    match action {
        RateLimitAction::RequestHeaders {
            header_name,
            descriptor_key,
        } => {
            json!({"request_headers": {"header_name": header_name, "descriptor_key": descriptor_key}})
        }
        RateLimitAction::HeaderValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            headers,
        } => json!({
            "header_value_match": {
                "descriptor_key": descriptor_key,
                "descriptor_value": descriptor_value,
                "expect_match": expect_match,
                "headers": headers.iter().map(|h| json!({"name": h.name, "match": format!("{:?}", h.matcher)})).collect::<Vec<_>>(),
            }
        }),
        RateLimitAction::RemoteAddressMatch {
            descriptor_key,
            descriptor_value,
            ranges,
            invert,
        } => json!({
            "remote_address_match": {
                "descriptor_key": descriptor_key, "descriptor_value": descriptor_value,
                "ranges": ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "invert": invert,
            }
        }),
        RateLimitAction::RemoteAddress { descriptor_key } => {
            json!({"remote_address": {"descriptor_key": descriptor_key}})
        }
        RateLimitAction::QueryParameterValueMatch {
            descriptor_key,
            descriptor_value,
            expect_match,
            params,
        } => json!({
            "query_parameter_value_match": {
                "descriptor_key": descriptor_key, "descriptor_value": descriptor_value, "expect_match": expect_match,
                "query_parameters": params.iter().map(|p| json!({"name": p.name, "match": format!("{:?}", p.matcher)})).collect::<Vec<_>>(),
            }
        }),
        RateLimitAction::QueryParameters {
            query_parameter_name,
            descriptor_key,
        } => json!({
            "query_parameters": {"query_parameter_name": query_parameter_name, "descriptor_key": descriptor_key}
        }),
        RateLimitAction::GenericKey {
            descriptor_key,
            descriptor_value,
        } => json!({
            "generic_key": {"descriptor_key": descriptor_key, "descriptor_value": descriptor_value}
        }),
    }
}

fn local_json(config: &LocalRateLimit) -> Value {
    json!({
        "token_bucket": bucket_json(&config.default_bucket),
        "descriptors": config.descriptors.iter().map(|d| json!({
            "entries": d.entries.iter().map(|e| json!({"key": e.key, "value": e.value})).collect::<Vec<_>>(),
            "token_bucket": bucket_json(&d.bucket),
            "shadow_mode": d.shadow_mode,
        })).collect::<Vec<_>>(),
        "rate_limits": config.rate_limits.iter().map(|r| json!({
            "actions": r.actions.iter().map(action_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "always_consume_default_token_bucket": config.always_consume_default_token_bucket,
        "max_dynamic_descriptors": config.max_dynamic_descriptors,
        "status": config.status,
    })
}

fn global_json(config: &GlobalRateLimit) -> Value {
    json!({
        "domain": config.domain,
        "rate_limits": config.rate_limits.iter().map(|r| json!({
            "actions": r.actions.iter().map(action_json).collect::<Vec<_>>(),
            "hits_addend": match &r.hits_addend {
                None => Value::Null,
                Some(HitsAddend::Number(number)) => json!({"number": number}),
                Some(HitsAddend::Metadata { namespace, key }) => json!({"metadata": {"namespace": namespace, "key": key}}),
            },
            "apply_on_stream_done": r.apply_on_stream_done,
        })).collect::<Vec<_>>(),
        "limits": config.limits.iter().map(|l| json!({
            "descriptors": l.chain.iter().map(|e| json!({"key": e.key, "value": e.value})).collect::<Vec<_>>(),
            "requests_per_unit": l.requests_per_unit,
            "unit": l.unit.name(),
            "shadow_mode": l.shadow_mode,
        })).collect::<Vec<_>>(),
    })
}

fn route_json(route: &Route, model: &GatewayModel) -> Value {
    json!({
        "name": route.name,
        "http_route": route.http_route,
        "hostnames": route.hostnames,
        "path": match &route.path {
            PathMatch::Exact(p) => json!({"exact": p}),
            PathMatch::Prefix(p) => json!({"prefix": p}),
            PathMatch::Regex(r) => json!({"regex": r.source}),
        },
        "method": route.method,
        "headers": route.headers.iter().map(|h| json!({"name": h.name, "match": format!("{:?}", h.matcher)})).collect::<Vec<_>>(),
        "action": match &route.action {
            RouteAction::Forward { cluster } => json!({"cluster": model.clusters.get(*cluster).map(|c| c.name.clone())}),
            RouteAction::DirectResponse { status, reason } => json!({"direct_response": status, "reason": reason}),
        },
        "policy": route.policy,
        "local_rate_limit": route.local_rate_limit.as_ref().map(local_json),
        "global_rate_limit": route.global_rate_limit.as_ref().map(global_json),
        "shared_global_rate_limits": route.shared_global_rate_limits.iter().map(global_json).collect::<Vec<_>>(),
        "retry": route.retry.as_ref().map(|r| json!({
            "num_retries": r.num_retries,
            "retry_on": format!("{:?}", r.retry_on),
            "retriable_status_codes": r.retriable_status_codes,
            "per_try_timeout_s": r.per_try_timeout.map(seconds),
            "base_interval_s": seconds(r.base_interval),
            "max_interval_s": seconds(r.max_interval),
        })),
        "request_timeout_s": route.timeouts.request.map(seconds),
        "fault": route.fault.as_ref().map(|f| json!({
            "delay": f.delay.as_ref().map(|d| json!({"fixed_delay_s": seconds(d.fixed_delay), "percentage": d.percentage})),
            "abort": f.abort.as_ref().map(|a| json!({"http_status": a.http_status, "percentage": a.percentage})),
        })),
    })
}

fn cluster_json(cluster: &Cluster) -> Value {
    let breaker = &cluster.circuit_breaker;
    json!({
        "name": cluster.name,
        "backends": cluster.backends.iter().map(|b| json!({
            "name": b.name, "namespace": b.namespace, "port": b.port, "weight": b.weight,
        })).collect::<Vec<_>>(),
        "circuit_breaker": {
            "max_connections": breaker.max_connections,
            "max_pending_requests": breaker.max_pending_requests,
            "max_requests": breaker.max_requests,
            "max_retries": breaker.max_retries,
            "retry_budget": breaker.retry_budget.map(|b| json!({
                "budget_percent": b.budget_percent, "min_retry_concurrency": b.min_retry_concurrency,
            })),
            "max_requests_per_connection": breaker.max_requests_per_connection,
        },
        "load_balancer": match &cluster.load_balancer {
            LoadBalancer::LeastRequest { choice_count } => json!({"least_request": {"choice_count": choice_count}}),
            LoadBalancer::RoundRobin => json!("round_robin"),
            LoadBalancer::Random => json!("random"),
            LoadBalancer::ConsistentHash { hash_on, table_size } => json!({
                "maglev": {"hash_on": format!("{hash_on:?}"), "table_size": table_size}
            }),
        },
        "outlier_detection": cluster.outlier_detection.as_ref().map(|o| json!({
            "interval_s": seconds(o.interval),
            "base_ejection_time_s": seconds(o.base_ejection_time),
            "max_ejection_time_s": seconds(o.max_ejection_time),
            "consecutive_5xx": o.consecutive_5xx,
            "consecutive_gateway_failure": o.consecutive_gateway_failure,
            "enforcing_consecutive_gateway_failure_percent": o.enforcing_consecutive_gateway_failure,
            "consecutive_local_origin_failure": o.consecutive_local_origin_failure,
            "split_external_local_origin_errors": o.split_external_local_origin_errors,
            "max_ejection_percent": o.max_ejection_percent,
            "always_eject_one_host": o.always_eject_one_host,
            "success_rate": {
                "minimum_hosts": o.success_rate_minimum_hosts,
                "request_volume": o.success_rate_request_volume,
                "stdev_factor": o.success_rate_stdev_factor,
                "enforcing_percent": o.enforcing_success_rate,
            },
            "failure_percentage": {
                "threshold": o.failure_percentage_threshold,
                "minimum_hosts": o.failure_percentage_minimum_hosts,
                "request_volume": o.failure_percentage_request_volume,
                "enforcing_percent": o.enforcing_failure_percentage,
            },
        })),
        "connect_timeout_s": seconds(cluster.connect_timeout),
        "healthy_panic_threshold_percent": cluster.healthy_panic_threshold,
    })
}

fn model_json(model: &GatewayModel) -> Value {
    json!({
        "routes": model.routes.iter().map(|r| route_json(r, model)).collect::<Vec<_>>(),
        "clusters": model.clusters.iter().map(cluster_json).collect::<Vec<_>>(),
        "policies": model.policies.iter().map(|p| json!({
            "name": p.name, "accepted": p.accepted, "reason": p.reason, "message": p.message,
            "applies_to": p.applies_to, "overrides": p.overrides, "warnings": p.warnings,
        })).collect::<Vec<_>>(),
        "notes": model.notes,
    })
}
