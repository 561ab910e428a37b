//! The fields of a scenario file, described once: each section's field
//! names, value types, defaults and meanings. The reader takes its lists of
//! accepted field names from these tables, and [`json_schema`] turns the
//! same tables into the JSON Schema that editors use to complete and check
//! scenario files (`trafficsim schema`, committed as
//! `schema/scenario.schema.json`). A field added here is both accepted and
//! documented; a field read without being listed here is an unknown-field
//! error.
//!
//! What the values mean in detail is in `docs/scenario-format.md`.

use serde_json::{Map, Value, json};

/// The type of a field's value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Any string.
    Text,
    /// A name usable as a folder name: letters, digits, `-`, `_`, `.`.
    FolderName,
    /// An integer in a range (inclusive).
    Integer { min: i64, max: i64 },
    /// A number in a range (inclusive).
    Number { min: f64, max: f64 },
    /// A duration with a unit, such as `250ms`.
    Duration,
    /// RFC 3339 UTC time or Unix seconds.
    StartTime,
    /// Requests per second, or `N/s`, `N/m`, `N/h`.
    Rate,
    /// One of fixed strings.
    OneOf(&'static [&'static str]),
    /// A distribution of durations.
    DurationDistribution,
    /// A distribution of counts.
    CountDistribution,
    /// A mapping of header names to values.
    Headers,
    /// Manifest paths and inline Kubernetes objects.
    Manifests,
    /// A nested section.
    Section(&'static Section),
    /// A list of items of a section.
    ListOf(&'static Section),
    /// A list of scalars (numbers or strings), such as values to sweep.
    ListOfScalars,
    /// A list of fixed strings.
    ListOfOneOf(&'static [&'static str]),
    /// A list of integers in a range (inclusive), such as indices.
    ListOfIntegers { min: i64, max: i64 },
    /// `true` or `false`.
    Boolean,
    /// A mapping of field paths to single values, as `compare` variants
    /// set them.
    PathValues,
    /// Status codes or classes: `429`, `5xx`, or a list of them.
    Statuses,
    /// Two numbers, low and high.
    NumberPair,
}

/// A field's default, as it would be written in the file.
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    /// No default, or one that depends on other fields (described in `doc`).
    None,
    Integer(i64),
    Number(f64),
    Text(&'static str),
}

/// One field of a section.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub default: DefaultValue,
    pub doc: &'static str,
}

/// A mapping of a scenario file and its fields.
#[derive(Debug)]
pub struct Section {
    /// Place of the section in the file, such as `envoy` or `backends[]`.
    pub path: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

impl Section {
    /// Lists the names of the section's fields, in table order.
    pub fn names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|field| field.name).collect()
    }
}

const fn field(name: &'static str, kind: Kind, default: DefaultValue, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        default,
        doc,
    }
}

const fn required(name: &'static str, kind: Kind, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        default: DefaultValue::None,
        doc,
    }
}

use DefaultValue::{Integer as DefInt, None as NoDefault, Number as DefNum, Text as DefText};

/// The top level of a scenario file.
pub static SCENARIO: Section = Section {
    path: "",
    doc: "A trafficsim scenario: the manifests, the backends behind them, the clients that \
          send traffic and the Envoy fleet in between.",
    fields: &[
        field(
            "name",
            Kind::FolderName,
            NoDefault,
            "Names the output folder outputs/<name>/; defaults to the file name without \
             extension.",
        ),
        field("description", Kind::Text, DefText(""), "Free text."),
        field(
            "seed",
            Kind::Integer {
                min: 0,
                max: i64::MAX,
            },
            DefInt(1),
            "Random seed; --seed on the command line overrides it.",
        ),
        field(
            "duration",
            Kind::Duration,
            NoDefault,
            "Simulated time to run. Without it the run ends when every client is done.",
        ),
        field(
            "start_time",
            Kind::StartTime,
            DefText("2026-01-01T00:00:00Z"),
            "Wall-clock time at simulated time zero, as RFC 3339 UTC or Unix seconds.",
        ),
        field("envoy", Kind::Section(&ENVOY), NoDefault, ENVOY.doc),
        field(
            "rate_limit_service",
            Kind::Section(&RATE_LIMIT_SERVICE),
            NoDefault,
            RATE_LIMIT_SERVICE.doc,
        ),
        field(
            "rate_limit_mode",
            Kind::OneOf(&["local", "global"]),
            NoDefault,
            "Rewrites every policy's rate limit to local or global rules; left out, the \
             policies apply as written.",
        ),
        required(
            "manifests",
            Kind::Manifests,
            "Manifest files, folders (every *.yaml and *.yml), or inline Kubernetes objects.",
        ),
        required(
            "backends",
            Kind::ListOf(&BACKEND),
            "The Services the routes send traffic to.",
        ),
        required("clients", Kind::ListOf(&CLIENT), "Who sends traffic."),
        field("output", Kind::Section(&OUTPUT), NoDefault, OUTPUT.doc),
        field("limits", Kind::Section(&LIMITS), NoDefault, LIMITS.doc),
        field("sweep", Kind::Section(&SWEEP), NoDefault, SWEEP.doc),
        field("compare", Kind::Section(&COMPARE), NoDefault, COMPARE.doc),
        field(
            "expect",
            Kind::ListOf(&EXPECTATION),
            NoDefault,
            "What `trafficsim check` judges after running the scenario.",
        ),
    ],
};

pub static ENVOY: Section = Section {
    path: "envoy",
    doc: "The Envoy fleet behind the Gateway.",
    fields: &[
        field(
            "replicas",
            Kind::Integer {
                min: 1,
                max: 10_000,
            },
            DefInt(1),
            "Envoy pods behind the Gateway's Service. Local limits, circuit breakers and \
             connection pools are per replica.",
        ),
        field(
            "workers",
            Kind::Integer { min: 1, max: 1_024 },
            DefInt(2),
            "Worker threads per replica, each with its own upstream connection pools.",
        ),
        field(
            "spread",
            Kind::OneOf(&["round-robin", "random", "sticky"]),
            DefText("round-robin"),
            "How requests reach replicas.",
        ),
        field(
            "token_bucket",
            Kind::OneOf(&["continuous", "timer"]),
            DefText("continuous"),
            "continuous refill (Envoy 1.32 and later) or timer (whole refills, Envoy up to \
             1.31).",
        ),
        field(
            "client_latency",
            Kind::Duration,
            DefText("200us"),
            "One-way latency between a client and Envoy.",
        ),
        field(
            "upstream_latency",
            Kind::Duration,
            DefText("100us"),
            "One-way latency between Envoy and a backend.",
        ),
        field(
            "connect_time",
            Kind::Duration,
            DefText("0s"),
            "Time to open an upstream connection.",
        ),
        field(
            "update_merge_window",
            Kind::Duration,
            DefText("1s"),
            "Envoy's common_lb_config.update_merge_window: how long host health changes \
             wait before they reach the load balancers; 0s delivers each at once.",
        ),
        field(
            "max_dynamic_descriptors",
            Kind::Integer {
                min: 1,
                max: 10_000_000,
            },
            NoDefault,
            "Capacity of every local rate limit's cache of per-value (Distinct) buckets; \
             Envoy Gateway leaves Envoy's route-level default of 20.",
        ),
    ],
};

pub static BACKEND: Section = Section {
    path: "backends[]",
    doc: "A Service that HTTPRoute backendRefs name, and its endpoints.",
    fields: &[
        required("name", Kind::Text, "The Service name in backendRefs."),
        field(
            "namespace",
            Kind::Text,
            DefText("default"),
            "The Service namespace.",
        ),
        field(
            "endpoints",
            Kind::Integer {
                min: 1,
                max: 100_000,
            },
            DefInt(1),
            "Pods behind the Service.",
        ),
        field(
            "concurrency",
            Kind::Integer {
                min: 1,
                max: 1_000_000,
            },
            DefInt(1_000),
            "Requests one endpoint serves at once; more wait in its FIFO queue.",
        ),
        field(
            "service_time",
            Kind::DurationDistribution,
            DefText("1ms"),
            "Distribution of the time to serve one request.",
        ),
        field(
            "per_output_token",
            Kind::Duration,
            DefText("0s"),
            "Added to the service time for each output token.",
        ),
        field(
            "errors",
            Kind::ListOf(&ERROR_RESPONSE),
            NoDefault,
            "Shares of requests answered with an error status.",
        ),
        field("cost", Kind::Section(&COST), NoDefault, COST.doc),
        field(
            "schedule",
            Kind::ListOf(&SCHEDULE_WINDOW),
            NoDefault,
            "Windows of changed behaviour: errors, delays, slowdowns, refused or \
             unanswered connections, resets.",
        ),
        field(
            "overload",
            Kind::Section(&OVERLOAD),
            NoDefault,
            OVERLOAD.doc,
        ),
        field(
            "queue_capacity",
            Kind::Integer {
                min: 0,
                max: u32::MAX as i64,
            },
            NoDefault,
            "Attempts an endpoint keeps waiting when all its concurrency slots are busy; \
             unbounded when left out, 0 means no queue.",
        ),
        field(
            "queue_full_status",
            Kind::Integer { min: 100, max: 599 },
            DefInt(503),
            "Status answered at once to an attempt that finds the queue full.",
        ),
    ],
};

pub static SCHEDULE_WINDOW: Section = Section {
    path: "backends[].schedule[]",
    doc: "A window from `from` until `to` (exclusive) in which some endpoints behave \
          differently; it sets at most one of refuse, no_answer and reset.",
    fields: &[
        field(
            "from",
            Kind::Duration,
            DefText("0s"),
            "Start of the window.",
        ),
        field(
            "to",
            Kind::Duration,
            NoDefault,
            "End of the window (exclusive); defaults to the end of the run.",
        ),
        field(
            "endpoints",
            Kind::ListOfIntegers {
                min: 0,
                max: u32::MAX as i64,
            },
            NoDefault,
            "Endpoint indices from 0; defaults to all.",
        ),
        field(
            "status",
            Kind::Integer { min: 100, max: 599 },
            NoDefault,
            "Error status answered with probability error_probability.",
        ),
        field(
            "error_probability",
            Kind::Number { min: 0.0, max: 1.0 },
            DefNum(1.0),
            "Share of requests answered with status.",
        ),
        field(
            "retry_after",
            Kind::Duration,
            NoDefault,
            "retry-after header of the window's error responses.",
        ),
        field(
            "add_delay",
            Kind::Duration,
            NoDefault,
            "Added to every service time.",
        ),
        field(
            "slowdown_factor",
            Kind::Number {
                min: 0.0,
                max: f64::MAX,
            },
            NoDefault,
            "Multiplies every service time, per-token time included.",
        ),
        field(
            "refuse",
            Kind::Boolean,
            NoDefault,
            "Connections are rejected at once and open ones closed.",
        ),
        field(
            "no_answer",
            Kind::Boolean,
            NoDefault,
            "Connection attempts time out and requests get no response.",
        ),
        field(
            "reset",
            Kind::Boolean,
            NoDefault,
            "Every request arriving is answered with a TCP reset.",
        ),
    ],
};

pub static OVERLOAD: Section = Section {
    path: "backends[].overload",
    doc: "Capacity collapse: each request in service beyond threshold stretches the \
          service time of a starting request.",
    fields: &[
        required(
            "threshold",
            Kind::Integer {
                min: 0,
                max: 1_000_000,
            },
            "Requests in service at an endpoint before the slowdown starts.",
        ),
        required(
            "slowdown_per_request",
            Kind::Number { min: 0.0, max: 1e6 },
            "Added multiple of the base service time per request beyond threshold.",
        ),
    ],
};

pub static ERROR_RESPONSE: Section = Section {
    path: "backends[].errors[]",
    doc: "A share of requests answered with an error status.",
    fields: &[
        required(
            "status",
            Kind::Integer { min: 100, max: 599 },
            "HTTP status of the error response.",
        ),
        required(
            "probability",
            Kind::Number { min: 0.0, max: 1.0 },
            "Share of requests that get it; the shares add up to at most 1.",
        ),
        field(
            "retry_after",
            Kind::Duration,
            NoDefault,
            "Duration sent as the retry-after header of these responses.",
        ),
    ],
};

pub static COST: Section = Section {
    path: "backends[].cost",
    doc: "Price of each request that reaches the backend, retries included.",
    fields: &[
        field(
            "per_request_usd",
            Kind::Number {
                min: 0.0,
                max: 1e12,
            },
            DefNum(0.0),
            "US dollars per request.",
        ),
        field(
            "input_usd_per_million",
            Kind::Number {
                min: 0.0,
                max: 1e12,
            },
            DefNum(0.0),
            "US dollars per million input tokens.",
        ),
        field(
            "output_usd_per_million",
            Kind::Number {
                min: 0.0,
                max: 1e12,
            },
            DefNum(0.0),
            "US dollars per million output tokens.",
        ),
    ],
};

/// The kinds of client and the fields each adds to [`CLIENT`].
pub static CLIENT_KINDS: [(&str, &Section); 5] = [
    ("sequential", &SEQUENTIAL),
    ("closed", &CLOSED),
    ("open", &OPEN),
    ("agent", &AGENT),
    ("trace", &TRACE),
];

/// Fields of every client, whatever its kind.
pub static CLIENT: Section = Section {
    path: "clients[]",
    doc: "A client definition; count instances of it run side by side.",
    fields: &[
        field(
            "name",
            Kind::Text,
            NoDefault,
            "Name in the summary and charts; defaults to client-<position>.",
        ),
        field(
            "kind",
            Kind::OneOf(&["sequential", "closed", "open", "agent", "trace"]),
            DefText("sequential"),
            "How the client sends requests.",
        ),
        field(
            "count",
            Kind::Integer {
                min: 1,
                max: 1_000_000,
            },
            DefInt(1),
            "Instances of this client.",
        ),
        field(
            "start",
            Kind::Duration,
            DefText("0s"),
            "Delay before the first request (after `after`, if set).",
        ),
        field(
            "after",
            Kind::Text,
            NoDefault,
            "Name of an earlier client; this one starts when all its instances have finished.",
        ),
        field(
            "stop",
            Kind::Duration,
            NoDefault,
            "Simulated time after which no new request is sent.",
        ),
        field("method", Kind::Text, DefText("GET"), "HTTP method."),
        field(
            "path",
            Kind::Text,
            DefText("/"),
            "Request path with an optional query string; {index} is the instance number.",
        ),
        field(
            "host",
            Kind::Text,
            DefText("www.example.com"),
            "Host header, matched against HTTPRoute hostnames.",
        ),
        field(
            "headers",
            Kind::Headers,
            NoDefault,
            "Request headers; {index} is the instance number.",
        ),
        field(
            "delay",
            Kind::Duration,
            NoDefault,
            "Asks the backend to take exactly this long.",
        ),
        field(
            "source_ip",
            Kind::Text,
            NoDefault,
            "Client address; defaults to 10.0.x.y, distinct per instance.",
        ),
        field(
            "tokens",
            Kind::Section(&TOKENS),
            NoDefault,
            "Input and output tokens per request, for the cost model.",
        ),
        field(
            "connection",
            Kind::OneOf(&["keep-alive", "per-request"]),
            NoDefault,
            "keep-alive uses one Envoy worker for every request of an instance; defaults \
             to per-request for sequential, open and trace clients.",
        ),
        field(
            "timeout",
            Kind::Duration,
            NoDefault,
            "How long the client waits for a response before it closes the connection.",
        ),
        field(
            "retries",
            Kind::Section(&CLIENT_RETRIES),
            NoDefault,
            CLIENT_RETRIES.doc,
        ),
    ],
};

/// The backoff schedules of client retries, as `retries.backoff` names them.
pub static BACKOFF_KINDS: [&str; 5] = [
    "none",
    "exponential",
    "full-jitter",
    "equal-jitter",
    "decorrelated-jitter",
];

pub static CLIENT_RETRIES: Section = Section {
    path: "clients[].retries",
    doc: "The client library's own retries of a call.",
    fields: &[
        field(
            "max",
            Kind::Integer { min: 0, max: 1_000 },
            DefInt(2),
            "Retries after a call's first request.",
        ),
        field(
            "backoff",
            Kind::OneOf(&BACKOFF_KINDS),
            DefText("exponential"),
            "Wait before each retry, from base and cap.",
        ),
        field(
            "base",
            Kind::Duration,
            DefText("500ms"),
            "Base of the backoff.",
        ),
        field(
            "cap",
            Kind::Duration,
            DefText("8s"),
            "Longest backoff; at least base.",
        ),
        field(
            "respect_retry_after",
            Kind::Boolean,
            NoDefault,
            "Wait as long as a response's retry-after asks (60 s or less) in place of the \
             backoff; true when left out.",
        ),
        field(
            "statuses",
            Kind::ListOfIntegers { min: 100, max: 599 },
            NoDefault,
            "Response statuses that are retried; defaults to 408, 409, 429 and every 5xx.",
        ),
    ],
};

pub static TOKENS: Section = Section {
    path: "clients[].tokens",
    doc: "Distributions of tokens per request.",
    fields: &[
        field(
            "input",
            Kind::CountDistribution,
            NoDefault,
            "Input tokens per request.",
        ),
        field(
            "output",
            Kind::CountDistribution,
            NoDefault,
            "Output tokens per request.",
        ),
    ],
};

const REQUESTS: Kind = Kind::Integer {
    min: 1,
    max: i64::MAX,
};

pub static SEQUENTIAL: Section = Section {
    path: "clients[] (kind: sequential)",
    doc: "One request at a time, like curl in a for loop.",
    fields: &[
        required("requests", REQUESTS, "Requests per instance."),
        field(
            "think_time",
            Kind::DurationDistribution,
            DefText("0s"),
            "Wait after each response before the next request.",
        ),
    ],
};

pub static CLOSED: Section = Section {
    path: "clients[] (kind: closed)",
    doc: "Workers sharing a number of requests, like hey -n N -c C.",
    fields: &[
        required(
            "requests",
            REQUESTS,
            "Requests per instance, shared by its workers.",
        ),
        required(
            "concurrency",
            Kind::Integer {
                min: 1,
                max: 1_000_000,
            },
            "Workers, each with one request in flight.",
        ),
        field(
            "think_time",
            Kind::DurationDistribution,
            DefText("0s"),
            "Wait after each response.",
        ),
    ],
};

pub static OPEN: Section = Section {
    path: "clients[] (kind: open)",
    doc: "Requests at a rate, whether or not earlier ones have finished.",
    fields: &[
        required("rate", Kind::Rate, "Requests per second, or N/s, N/m, N/h."),
        field(
            "arrival",
            Kind::OneOf(&["poisson", "constant"]),
            DefText("poisson"),
            "poisson (exponential gaps) or constant (even gaps).",
        ),
        field("requests", REQUESTS, NoDefault, "Stop after this many."),
        field(
            "users",
            Kind::Integer {
                min: 1,
                max: 100_000_000,
            },
            NoDefault,
            "Each request comes from one of this many users; {user} in headers or path is \
             its number.",
        ),
    ],
};

pub static AGENT: Section = Section {
    path: "clients[] (kind: agent)",
    doc: "A runaway LLM agent that sends its next request as soon as the previous one ends.",
    fields: &[
        field(
            "think_time",
            Kind::DurationDistribution,
            DefText("0s"),
            "Wait after a 2xx response.",
        ),
        field(
            "retry_delay",
            Kind::DurationDistribution,
            DefText("0s"),
            "Wait after any other response.",
        ),
        field("requests", REQUESTS, NoDefault, "Stop after this many."),
    ],
};

pub static TRACE: Section = Section {
    path: "clients[] (kind: trace)",
    doc: "Replays a CSV of recorded requests, one row per request in time order.",
    fields: &[
        required("file", Kind::Text, "CSV file, relative to the scenario."),
        field(
            "time_column",
            Kind::Text,
            DefText("TIMESTAMP"),
            "Column with the request times.",
        ),
        field(
            "input_tokens_column",
            Kind::Text,
            NoDefault,
            "Column with input tokens per request.",
        ),
        field(
            "output_tokens_column",
            Kind::Text,
            NoDefault,
            "Column with output tokens per request.",
        ),
        field(
            "speedup",
            Kind::Number {
                min: 0.0,
                max: f64::MAX,
            },
            DefNum(1.0),
            "2 replays twice as fast.",
        ),
    ],
};

pub static OUTPUT: Section = Section {
    path: "output",
    doc: "Output options.",
    fields: &[field(
        "bucket",
        Kind::Duration,
        DefText("1s"),
        "Width of one row of timeseries.csv and of one step of the charts; at least 1ms.",
    )],
};

pub static LIMITS: Section = Section {
    path: "limits",
    doc: "Bounds that stop a run that would otherwise not end or not fit in memory.",
    fields: &[
        field(
            "max_events",
            Kind::Integer {
                min: 0,
                max: i64::MAX,
            },
            DefInt(2_000_000_000),
            "Events processed.",
        ),
        field(
            "max_in_flight",
            Kind::Integer {
                min: 0,
                max: i64::MAX,
            },
            DefInt(1_000_000),
            "Requests sent and not yet answered.",
        ),
        field(
            "max_duration",
            Kind::Duration,
            DefText("7d"),
            "Simulated time, when the scenario has no duration.",
        ),
    ],
};

pub static RATE_LIMIT_SERVICE: Section = Section {
    path: "rate_limit_service",
    doc: "The rate limit service and Redis behind global rate limits.",
    fields: &[
        field(
            "replicas",
            Kind::Integer { min: 1, max: 1_000 },
            DefInt(1),
            "Service pods.",
        ),
        field(
            "network_latency",
            Kind::Duration,
            DefText("250us"),
            "One-way latency between Envoy and the service.",
        ),
        field(
            "service_time",
            Kind::DurationDistribution,
            DefText("100us"),
            "Distribution of a replica's own time per call.",
        ),
        field(
            "timeout",
            Kind::Duration,
            DefText("20ms"),
            "Envoy's deadline for the answer (rateLimit.timeout).",
        ),
        field(
            "fail_closed",
            Kind::Boolean,
            NoDefault,
            "On an error or timeout answer 500 instead of letting the request through; \
             false when left out.",
        ),
        field(
            "local_cache",
            Kind::Boolean,
            NoDefault,
            "The service's cache of keys already over their limit; false when left out.",
        ),
        field(
            "concurrency",
            Kind::Integer {
                min: 1,
                max: 1_000_000,
            },
            NoDefault,
            "Calls one service replica processes at once; more wait in arrival order. \
             Unset, a replica never saturates.",
        ),
        field(
            "faults",
            Kind::ListOf(&SERVICE_FAULT),
            NoDefault,
            "Fault windows of the service replicas.",
        ),
        field("redis", Kind::Section(&REDIS), NoDefault, REDIS.doc),
    ],
};

pub static REDIS: Section = Section {
    path: "rate_limit_service.redis",
    doc: "The Redis that holds every service replica's counters.",
    fields: &[
        field(
            "network_latency",
            Kind::Duration,
            DefText("250us"),
            "One-way latency between a service replica and Redis.",
        ),
        field(
            "service_time",
            Kind::DurationDistribution,
            DefText("100us"),
            "Distribution of the time Redis takes to run one pipeline.",
        ),
        field(
            "concurrency",
            Kind::Integer {
                min: 1,
                max: 1_000_000,
            },
            NoDefault,
            "Pipelines Redis runs at once (1 for one Redis process); more wait in arrival \
             order. Unset, Redis never saturates.",
        ),
        field(
            "faults",
            Kind::ListOf(&REDIS_FAULT),
            NoDefault,
            "Fault windows of Redis.",
        ),
    ],
};

const FAULT_REPLICAS: Kind = Kind::ListOfIntegers {
    min: 0,
    max: u32::MAX as i64,
};

pub static SERVICE_FAULT: Section = Section {
    path: "rate_limit_service.faults[]",
    doc: "A fault window of the rate limit service.",
    fields: &[
        required("from", Kind::Duration, "Start of the window."),
        required("to", Kind::Duration, "End of the window, after from."),
        required(
            "kind",
            Kind::OneOf(&["down", "slow"]),
            "down refuses connections; slow adds delay to every answer.",
        ),
        field(
            "delay",
            Kind::Duration,
            NoDefault,
            "Added to every answer of a slow fault.",
        ),
        field(
            "replicas",
            FAULT_REPLICAS,
            NoDefault,
            "Service replicas (from 0) the fault applies to; defaults to all.",
        ),
    ],
};

pub static REDIS_FAULT: Section = Section {
    path: "rate_limit_service.redis.faults[]",
    doc: "A fault window of Redis.",
    fields: &[
        required("from", Kind::Duration, "Start of the window."),
        required("to", Kind::Duration, "End of the window, after from."),
        required(
            "kind",
            Kind::OneOf(&["down", "slow", "partition"]),
            "down refuses connections, slow adds delay, partition cuts the listed \
             service replicas off Redis.",
        ),
        field(
            "delay",
            Kind::Duration,
            NoDefault,
            "Added to every pipeline of a slow fault.",
        ),
        field(
            "replicas",
            FAULT_REPLICAS,
            NoDefault,
            "Service replicas (from 0) the fault applies to; defaults to all.",
        ),
    ],
};

pub static COMPARE: Section = Section {
    path: "compare",
    doc: "Variants that `trafficsim compare` runs on the same seed.",
    fields: &[
        field(
            "limit",
            Kind::Rate,
            NoDefault,
            "The configured limit, drawn on the admitted-rate chart.",
        ),
        field(
            "variants",
            Kind::ListOf(&COMPARE_VARIANT),
            NoDefault,
            "The variants; a variant without set runs the scenario as written.",
        ),
    ],
};

pub static COMPARE_VARIANT: Section = Section {
    path: "compare.variants[]",
    doc: "One variant: a name and the fields it changes.",
    fields: &[
        required(
            "name",
            Kind::FolderName,
            "Name of the variant, used as a folder name.",
        ),
        field(
            "set",
            Kind::PathValues,
            NoDefault,
            "Field paths (as in sweep) mapped to one value each.",
        ),
    ],
};

/// The metrics an expectation measures, as `expect[].metric` names them.
pub static EXPECT_METRICS: [&str; 10] = [
    "status_fraction",
    "status_count",
    "completed",
    "admitted",
    "admitted_rate",
    "latency_ms",
    "spend_usd",
    "retries",
    "backend_requests",
    "envoy_stat",
];

const ANY_NUMBER: Kind = Kind::Number {
    min: f64::MIN,
    max: f64::MAX,
};

pub static EXPECTATION: Section = Section {
    path: "expect[]",
    doc: "One expectation: a metric, an optional scope and window, and one bound.",
    fields: &[
        field(
            "name",
            Kind::Text,
            NoDefault,
            "Shown in the table and as the JUnit test case name; built from metric, scope \
             and window when left out.",
        ),
        required("metric", Kind::OneOf(&EXPECT_METRICS), "What to measure."),
        field(
            "status",
            Kind::Statuses,
            NoDefault,
            "For status_fraction and status_count: a code, a class (5xx) or a list.",
        ),
        field(
            "percentile",
            Kind::Number {
                min: 0.0,
                max: 100.0,
            },
            NoDefault,
            "For latency_ms: above 0 up to 100.",
        ),
        field(
            "stat",
            Kind::Text,
            NoDefault,
            "For envoy_stat: a stat name as summary.json lists it under envoy_stats.",
        ),
        field(
            "client",
            Kind::Text,
            NoDefault,
            "Scope: one client definition.",
        ),
        field("route", Kind::Text, NoDefault, "Scope: one HTTPRoute."),
        field(
            "replica",
            Kind::Integer {
                min: 0,
                max: u32::MAX as i64,
            },
            NoDefault,
            "Scope: one Envoy replica, from 0.",
        ),
        field(
            "from",
            Kind::Duration,
            NoDefault,
            "Start of the window of simulated time.",
        ),
        field(
            "to",
            Kind::Duration,
            NoDefault,
            "End of the window (exclusive).",
        ),
        field("max", ANY_NUMBER, NoDefault, "Upper bound, included."),
        field("min", ANY_NUMBER, NoDefault, "Lower bound, included."),
        field(
            "between",
            Kind::NumberPair,
            NoDefault,
            "Both bounds, [low, high], included.",
        ),
        field(
            "seeds",
            Kind::Integer { min: 1, max: 1_000 },
            DefInt(1),
            "Runs with seeds seed, seed + 1, ...; the bound applies to the mean.",
        ),
        field(
            "confidence",
            Kind::Number {
                min: 0.5,
                max: 0.999,
            },
            DefNum(0.95),
            "Level of the interval over the seeds.",
        ),
    ],
};

/// The metrics a sweep reports, as `sweep.metrics` and `goals[].metric`
/// name them.
pub static SWEEP_METRICS: [&str; 10] = [
    "fraction_2xx",
    "fraction_429",
    "fraction_503",
    "fraction_5xx",
    "latency_ms_p50",
    "latency_ms_p99",
    "admitted_per_s",
    "spend_usd",
    "requests",
    "backend_requests",
];

pub static SWEEP: Section = Section {
    path: "sweep",
    doc: "Parameters that `trafficsim sweep` varies when the command line names none; \
          every combination runs with `seeds` seeds.",
    fields: &[
        required(
            "parameters",
            Kind::ListOf(&SWEEP_PARAMETER),
            "The first parameter is the x axis of the charts; every combination of the \
             others is one line.",
        ),
        field(
            "seeds",
            Kind::Integer {
                min: 1,
                max: 10_000,
            },
            DefInt(1),
            "Runs per point, with seeds seed, seed + 1, ...",
        ),
        field(
            "confidence",
            Kind::Number { min: 0.0, max: 1.0 },
            DefNum(0.95),
            "Level of the intervals (Student's t over the seeds), between 0 and 1.",
        ),
        field(
            "metrics",
            Kind::ListOfOneOf(&SWEEP_METRICS),
            NoDefault,
            "What to report and chart; defaults to fraction_429, fraction_503, \
             latency_ms_p99, admitted_per_s and spend_usd.",
        ),
        field(
            "goals",
            Kind::ListOf(&SWEEP_GOAL),
            NoDefault,
            "Bounds on the mean; points meeting all are marked met.",
        ),
    ],
};

pub static SWEEP_PARAMETER: Section = Section {
    path: "sweep.parameters[]",
    doc: "A field path and its values (or a range).",
    fields: &[
        required(
            "path",
            Kind::Text,
            "A scenario field (envoy.replicas, clients[name].rate) or a manifest field \
             (Kind/name:spec.field).",
        ),
        field(
            "values",
            Kind::ListOfScalars,
            NoDefault,
            "Values to try; give values or range.",
        ),
        field(
            "range",
            Kind::Section(&SWEEP_RANGE),
            NoDefault,
            "Evenly spaced values; give values or range.",
        ),
    ],
};

pub static SWEEP_RANGE: Section = Section {
    path: "sweep.parameters[].range",
    doc: "Values from `from` to `to` in steps of `step`, each followed by `suffix`.",
    fields: &[
        required(
            "from",
            Kind::Number {
                min: f64::MIN,
                max: f64::MAX,
            },
            "First value.",
        ),
        required(
            "to",
            Kind::Number {
                min: f64::MIN,
                max: f64::MAX,
            },
            "Last value (included when a step lands on it).",
        ),
        field(
            "step",
            Kind::Number {
                min: 0.0,
                max: f64::MAX,
            },
            DefNum(1.0),
            "Distance between values.",
        ),
        field(
            "suffix",
            Kind::Text,
            DefText(""),
            "Unit written after each value, such as /s or ms.",
        ),
    ],
};

pub static SWEEP_GOAL: Section = Section {
    path: "sweep.goals[]",
    doc: "A bound on the mean of one metric.",
    fields: &[
        required("metric", Kind::OneOf(&SWEEP_METRICS), "The metric bounded."),
        field(
            "max",
            Kind::Number {
                min: f64::MIN,
                max: f64::MAX,
            },
            NoDefault,
            "Highest acceptable mean.",
        ),
        field(
            "min",
            Kind::Number {
                min: f64::MIN,
                max: f64::MAX,
            },
            NoDefault,
            "Lowest acceptable mean.",
        ),
    ],
};

/// The families of a distribution and their parameters.
pub static DISTRIBUTION_FAMILIES: [(&str, &[&str]); 4] = [
    ("constant", &[]),
    ("exponential", &["mean"]),
    ("lognormal", &["median", "p99"]),
    ("uniform", &["min", "max"]),
];

/// Lists the names of the distribution families, as the reader accepts them.
pub fn distribution_family_names() -> Vec<&'static str> {
    DISTRIBUTION_FAMILIES
        .iter()
        .map(|(name, _)| *name)
        .collect()
}

/// Lists the field names a client of `kind` accepts: the common ones, then
/// the kind's own. An unknown kind accepts the common ones only.
pub fn client_field_names(kind: &str) -> Vec<&'static str> {
    let mut names = CLIENT.names();
    if let Some((_, section)) = CLIENT_KINDS.iter().find(|(name, _)| *name == kind) {
        names.extend(section.names());
    }
    names
}

/// Builds the JSON Schema (draft-07) of a scenario file.
pub fn json_schema() -> Value {
    let mut root = section_schema(&SCENARIO, &[]);
    if let Value::Object(map) = &mut root {
        let mut head = Map::new();
        head.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        head.insert("title".into(), json!("trafficsim scenario"));
        head.extend(std::mem::take(map));
        head.insert("definitions".into(), definitions());
        *map = head;
    }
    root
}

fn section_schema(section: &Section, extra: &[Field]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in section.fields.iter().chain(extra) {
        properties.insert(field.name.to_string(), field_schema(field));
        if field.required {
            required.push(json!(field.name));
        }
    }
    let mut schema = Map::new();
    schema.insert("description".into(), json!(section.doc));
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    Value::Object(schema)
}

fn field_schema(field: &Field) -> Value {
    let mut schema = match kind_schema(field.kind) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    schema.insert("description".into(), json!(field.doc));
    match field.default {
        DefaultValue::None => {}
        DefaultValue::Integer(value) => {
            schema.insert("default".into(), json!(value));
        }
        DefaultValue::Number(value) => {
            schema.insert("default".into(), json!(value));
        }
        DefaultValue::Text(value) => {
            schema.insert("default".into(), json!(value));
        }
    }
    Value::Object(schema)
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{name}") })
}

fn kind_schema(kind: Kind) -> Value {
    match kind {
        Kind::Text => json!({ "type": "string" }),
        Kind::FolderName => json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$",
        }),
        Kind::Integer { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Kind::Number { min, max } => json!({ "type": "number", "minimum": min, "maximum": max }),
        Kind::Duration => reference("duration"),
        Kind::StartTime => json!({
            "anyOf": [
                { "type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|\\+00:00)$" },
                { "type": "integer", "minimum": 0 },
            ],
        }),
        Kind::Rate => reference("rate"),
        Kind::OneOf(values) => json!({ "type": "string", "enum": values }),
        Kind::DurationDistribution => reference("duration_distribution"),
        Kind::CountDistribution => reference("count_distribution"),
        Kind::Headers => json!({
            "type": "object",
            "additionalProperties": { "type": ["string", "number", "boolean"] },
        }),
        Kind::Manifests => json!({
            "type": "array",
            "items": {
                "anyOf": [
                    { "type": "string", "description": "A manifest file or folder, relative to the scenario." },
                    {
                        "type": "object",
                        "description": "An inline Kubernetes object, List, or translator bundle; \
                                        kinds trafficsim does not read are skipped with a note.",
                    },
                ],
            },
        }),
        Kind::Section(section) if std::ptr::eq(section, &CLIENT) => client_schema(),
        Kind::ListOf(section) if std::ptr::eq(section, &CLIENT) => json!({
            "type": "array",
            "minItems": 1,
            "items": client_schema(),
        }),
        Kind::Section(section) => section_schema(section, &[]),
        Kind::ListOf(section) => json!({ "type": "array", "items": section_schema(section, &[]) }),
        Kind::ListOfScalars => json!({
            "type": "array",
            "minItems": 1,
            "items": { "type": ["string", "number", "boolean"] },
        }),
        Kind::ListOfOneOf(values) => json!({
            "type": "array",
            "items": { "type": "string", "enum": values },
        }),
        Kind::ListOfIntegers { min, max } => json!({
            "type": "array",
            "items": { "type": "integer", "minimum": min, "maximum": max },
        }),
        Kind::Boolean => json!({ "type": "boolean" }),
        Kind::Statuses => {
            let one = json!({
                "anyOf": [
                    { "type": "integer", "minimum": 100, "maximum": 599 },
                    { "type": "string", "pattern": "^[1-5]xx$" },
                ],
            });
            json!({ "anyOf": [one.clone(), { "type": "array", "minItems": 1, "items": one }] })
        }
        Kind::NumberPair => json!({
            "type": "array",
            "items": { "type": "number" },
            "minItems": 2,
            "maxItems": 2,
        }),
        Kind::PathValues => json!({
            "type": "object",
            "additionalProperties": { "type": ["string", "number", "boolean"] },
        }),
    }
}

/// Builds one alternative per kind of client: the common fields, the kind's own,
/// and `kind` fixed to its name (left optional for `sequential`, the
/// default).
fn client_schema() -> Value {
    let alternatives: Vec<Value> = CLIENT_KINDS
        .iter()
        .map(|(kind, section)| {
            let mut schema = section_schema(&CLIENT, section.fields);
            if let Value::Object(map) = &mut schema {
                map.insert("title".into(), json!(format!("{kind} client")));
                map.insert("description".into(), json!(section.doc));
                if let Some(Value::Object(properties)) = map.get_mut("properties")
                    && let Some(Value::Object(kind_field)) = properties.get_mut("kind")
                {
                    kind_field.remove("enum");
                    kind_field.insert("const".into(), json!(kind));
                }
                if *kind != "sequential" {
                    let required = map
                        .entry("required")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(required) = required {
                        required.insert(0, json!("kind"));
                    }
                }
            }
            schema
        })
        .collect();
    json!({ "oneOf": alternatives })
}

fn distribution_schema(value: Value) -> Value {
    let mut alternatives = vec![value.clone()];
    for (family, parameters) in DISTRIBUTION_FAMILIES {
        let body = if parameters.is_empty() {
            value.clone()
        } else {
            let properties: Map<String, Value> = parameters
                .iter()
                .map(|name| (name.to_string(), value.clone()))
                .collect();
            json!({
                "type": "object",
                "properties": properties,
                "required": parameters,
                "additionalProperties": false,
            })
        };
        alternatives.push(json!({
            "type": "object",
            "properties": { family: body },
            "required": [family],
            "additionalProperties": false,
        }));
    }
    json!({
        "description": "A constant, or a mapping naming one family: constant, exponential {mean}, \
                        lognormal {median, p99} or uniform {min, max}.",
        "anyOf": alternatives,
    })
}

fn definitions() -> Value {
    json!({
        "duration": {
            "description": "A duration with a unit: ns, us, ms, s, m, h, d (such as 250ms, 1.5s, 2m30s); a bare 0 is accepted.",
            "anyOf": [
                { "type": "string", "pattern": "^\\s*(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?(ns|us|µs|ms|s|m|h|d))+)\\s*$" },
                { "const": 0 },
            ],
        },
        "rate": {
            "description": "Requests per second (100), or a number per unit: 100/s, 1000/m, 3600/h.",
            "anyOf": [
                { "type": "number", "exclusiveMinimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9.eE+-]+\\s*(/\\s*(s|m|min|h)\\s*)?$" },
            ],
        },
        "duration_distribution": distribution_schema(reference("duration")),
        "count_distribution": distribution_schema(json!({ "type": "number", "minimum": 0 })),
    })
}

/// Renders the committed schema's text: [`json_schema`] pretty-printed,
/// with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
