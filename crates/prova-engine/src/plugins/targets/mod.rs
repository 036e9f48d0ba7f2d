//! Target managers.

pub mod csv_file;
pub mod target_list;

/// How often a target manager tries again for targets other jobs hold.
pub(crate) const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(200);

use prova_core::Target;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;

/// Reads one target `{ID, FQDN, PrimaryIPv4, PrimaryIPv6}` (keys any case).
pub(crate) fn decode_target(n: &Node, path: &FieldPath, diags: &mut Diagnostics) -> Option<Target> {
    let Some(map) = n.as_map() else {
        diags.error(
            path,
            n.pos,
            format!(
                "expected a target {{ID, FQDN, PrimaryIPv4, PrimaryIPv6}}, found {}",
                n.type_name()
            ),
        );
        return None;
    };
    prova_core::descriptor::check_keys(
        map,
        path,
        &[
            "ID",
            "FQDN",
            "PrimaryIPv4",
            "PrimaryIPv6",
            "TargetManagerState",
        ],
        diags,
    );
    let text = |k: &str| n.get_ci(k).map(Node::scalar_text).unwrap_or_default();
    let t = Target {
        id: text("ID"),
        fqdn: text("FQDN"),
        primary_ipv4: text("PrimaryIPv4"),
        primary_ipv6: text("PrimaryIPv6"),
    };
    if t.id.trim().is_empty() {
        diags.error(
            &path.key("ID"),
            n.pos,
            "missing: every target needs a non-empty ID",
        );
        return None;
    }
    if !t.primary_ipv4.is_empty() && t.primary_ipv4.parse::<std::net::Ipv4Addr>().is_err() {
        diags.error(
            &path.key("PrimaryIPv4"),
            n.pos,
            format!("expected an IPv4 address, found {:?}", t.primary_ipv4),
        );
    }
    if !t.primary_ipv6.is_empty() && t.primary_ipv6.parse::<std::net::Ipv6Addr>().is_err() {
        diags.error(
            &path.key("PrimaryIPv6"),
            n.pos,
            format!("expected an IPv6 address, found {:?}", t.primary_ipv6),
        );
    }
    Some(t)
}
