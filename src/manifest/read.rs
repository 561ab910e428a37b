//! Finding the Kubernetes objects in files: folders, multi-document files,
//! `kind: List` objects, and the bundle format of Envoy Gateway's
//! translator tests (one mapping with `gateways`, `httpRoutes`, ... lists).
//!
//! Each object is handed to the reader for its kind; other kinds become a
//! note, not an error, unless the kind's name is close to a simulated
//! kind's, which makes it a likely typo.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ManifestSet;
use super::gateway_api::{RouteKind, read_gateway, read_metadata, read_route};
use super::policy::read_policy;
use crate::yaml::{Diagnostics, Node, Value, suggest};

/// The kinds the simulation reads.
const SIMULATED_KINDS: [&str; 4] = ["Gateway", "HTTPRoute", "GRPCRoute", "BackendTrafficPolicy"];

/// Other kinds of Gateway API and Envoy Gateway, skipped with a note even
/// where their names are close to a simulated kind's (`TCPRoute`).
const OTHER_GATEWAY_KINDS: [&str; 16] = [
    "GatewayClass",
    "TCPRoute",
    "TLSRoute",
    "UDPRoute",
    "ReferenceGrant",
    "BackendTLSPolicy",
    "BackendLBPolicy",
    "ListenerSet",
    "XListenerSet",
    "ClientTrafficPolicy",
    "SecurityPolicy",
    "EnvoyPatchPolicy",
    "EnvoyExtensionPolicy",
    "EnvoyProxy",
    "Backend",
    "HTTPRouteFilter",
];

/// Deepest folder nesting searched for manifest files.
const MAX_FOLDER_DEPTH: usize = 32;

/// Lists the `*.yaml` and `*.yml` files under `path` (or `path` itself when
/// it is a file), sorted by path.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    collect_files(path, 0, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_files(folder: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), String> {
    if depth > MAX_FOLDER_DEPTH {
        return Err(format!(
            "{} is nested more than {MAX_FOLDER_DEPTH} folders deep",
            folder.display()
        ));
    }
    let entries = std::fs::read_dir(folder)
        .map_err(|error| format!("cannot read folder {}: {error}", folder.display()))?;
    for entry in entries {
        let entry =
            entry.map_err(|error| format!("cannot read folder {}: {error}", folder.display()))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if file_type.is_dir() {
            collect_files(&path, depth + 1, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// The bundle keys of Envoy Gateway's translator test inputs and the kind
/// each list holds.
const BUNDLE_KEYS: &[(&str, &str)] = &[
    ("gateways", "Gateway"),
    ("httpRoutes", "HTTPRoute"),
    ("grpcRoutes", "GRPCRoute"),
    ("backendTrafficPolicies", "BackendTrafficPolicy"),
];

/// Reads every object in `root`, one document of `file`.
pub fn read_document(
    root: &Node,
    file: &Arc<Path>,
    set: &mut ManifestSet,
    diagnostics: &mut Diagnostics,
) {
    match &root.value {
        Value::Null => {}
        Value::Mapping(entries) => {
            if root.get("kind").is_some() || root.get("apiVersion").is_some() {
                read_object(root, file, set, diagnostics);
            } else {
                read_bundle(root, entries, file, set, diagnostics);
            }
        }
        _ => diagnostics.error(
            root,
            format!(
                "expected a Kubernetes object (a mapping with `kind`), found {}",
                root.kind_name()
            ),
        ),
    }
}

fn read_bundle(
    root: &Node,
    entries: &[(String, Node)],
    file: &Arc<Path>,
    set: &mut ManifestSet,
    diagnostics: &mut Diagnostics,
) {
    if entries.is_empty() {
        diagnostics.error(root, "expected a Kubernetes object, found an empty mapping");
        return;
    }
    let is_bundle_key = |key: &str| {
        BUNDLE_KEYS
            .iter()
            .any(|(bundle_key, _)| bundle_key.eq_ignore_ascii_case(key))
    };
    if !entries.iter().any(|(key, _)| is_bundle_key(key)) {
        // This is neither an object nor a bundle. Most likely it is a
        // scenario or some other file given in place of a manifest.
        let keys: Vec<&str> = entries
            .iter()
            .take(4)
            .map(|(key, _)| key.as_str())
            .collect();
        diagnostics.error(
            root,
            format!(
                "expected a Kubernetes object with `kind`, found a mapping with keys {}",
                keys.join(", ")
            ),
        );
        return;
    }
    for (key, value) in entries {
        // Envoy Gateway decodes bundles with Go's JSON rules, which match
        // keys case-insensitively (its own tests write `httproutes`).
        if !is_bundle_key(key) {
            if !value.is_null() {
                set.notes.push(format!(
                    "{}:{}:{}: skipped `{key}`; only Gateway, HTTPRoute, GRPCRoute and \
                     BackendTrafficPolicy affect the simulation",
                    file.display(),
                    value.location.line,
                    value.location.column,
                ));
            }
            continue;
        }
        let Some(items) = value.seq(diagnostics) else {
            continue;
        };
        for item in items {
            read_object(item, file, set, diagnostics);
        }
    }
}

fn read_object(
    node: &Node,
    file: &Arc<Path>,
    set: &mut ManifestSet,
    diagnostics: &mut Diagnostics,
) {
    let Some(kind_node) = node.get("kind").filter(|n| !n.is_null()) else {
        diagnostics.error(node, "missing required field `kind`");
        return;
    };
    let Some(kind) = kind_node.str(diagnostics) else {
        return;
    };
    if kind == "List" || kind.ends_with("List") {
        read_list(node, file, set, diagnostics);
        return;
    }
    let api_version = node.get("apiVersion").and_then(Node::scalar).unwrap_or("");
    let group = api_version
        .split_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    let expected_group = match kind {
        "Gateway" | "HTTPRoute" | "GRPCRoute" => "gateway.networking.k8s.io",
        "BackendTrafficPolicy" => "gateway.envoyproxy.io",
        _ => {
            if !OTHER_GATEWAY_KINDS.contains(&kind)
                && let Some(meant) = suggest(kind, &SIMULATED_KINDS)
            {
                diagnostics.error(
                    kind_node,
                    format!("unknown kind `{kind}`; did you mean `{meant}`?"),
                );
                return;
            }
            set.notes.push(format!(
                "{}:{}:{}: skipped {kind} `{}`; only Gateway, HTTPRoute, GRPCRoute and \
                 BackendTrafficPolicy affect the simulation",
                file.display(),
                node.location.line,
                node.location.column,
                object_name(node)
            ));
            return;
        }
    };
    if group != expected_group {
        diagnostics.error(
            node,
            format!("{kind} needs `apiVersion: {expected_group}/...`, found `{api_version}`"),
        );
        return;
    }
    let Some(meta) = read_metadata(node, file, diagnostics) else {
        return;
    };
    match kind {
        "Gateway" => set.gateways.extend(read_gateway(node, meta, diagnostics)),
        "HTTPRoute" => set
            .routes
            .extend(read_route(node, RouteKind::Http, meta, diagnostics)),
        "GRPCRoute" => set
            .routes
            .extend(read_route(node, RouteKind::Grpc, meta, diagnostics)),
        _ => set.policies.extend(read_policy(node, meta, diagnostics)),
    }
}

fn read_list(node: &Node, file: &Arc<Path>, set: &mut ManifestSet, diagnostics: &mut Diagnostics) {
    let Some(items) = node.get("items") else {
        return;
    };
    if items.is_null() {
        return;
    }
    if let Some(items) = items.seq(diagnostics) {
        for item in items {
            read_object(item, file, set, diagnostics);
        }
    }
}

fn object_name(node: &Node) -> String {
    let metadata = node.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(Node::scalar);
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Node::scalar);
    match (namespace, name) {
        (Some(namespace), Some(name)) => format!("{namespace}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "(unnamed)".to_string(),
    }
}
