//! `URI`: the steps are in a file (`{TestName, URI}`), a JSON or YAML
//! document `{"steps": [...]}`. `URI` is a path (or `file://` URL),
//! relative to the descriptor. Other schemes are refused: fetching steps
//! over the network at prepare time would make validation depend on it.

use prova_core::descriptor::{check_keys, decode_steps_document};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::{Format, Node, parse_document};

use crate::plugin::{FetchedSteps, PrepareCtx, TestFetcher};

pub struct Uri;

impl TestFetcher for Uri {
    fn fetch(
        &self,
        params: &Node,
        path: &FieldPath,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<FetchedSteps> {
        let Some(map) = params.as_map() else {
            diags.error(
                path,
                params.pos,
                format!("expected {{TestName, URI}}, found {}", params.type_name()),
            );
            return None;
        };
        check_keys(map, path, &["TestName", "URI"], diags);
        let upath = path.key("URI");
        let uri_node = params.get_ci("URI");
        let Some(uri) = uri_node
            .and_then(Node::as_str)
            .filter(|u| !u.trim().is_empty())
        else {
            diags.error(
                &upath,
                params.pos,
                "missing: expected the path of a steps file",
            );
            return None;
        };
        let pos = uri_node.and_then(|n| n.pos);
        let local = match uri.split_once("://") {
            None => uri,
            Some(("file", rest)) => rest,
            Some((scheme, _)) => {
                diags.error(
                    &upath,
                    pos,
                    format!(
                        "unsupported URI scheme {scheme:?}: expected a file path or file:// URL"
                    ),
                );
                return None;
            }
        };
        // Opened once, beneath the files root when there is one.
        let named = match ctx.file(local) {
            Ok(f) => f,
            Err(e) => {
                diags.error(&upath, pos, format!("cannot read steps file: {e}"));
                return None;
            }
        };
        let file = named.display_path();
        let text = match named.read_to_string() {
            Ok(t) => t,
            Err(e) => {
                diags.error(&upath, pos, format!("cannot read steps file: {e}"));
                return None;
            }
        };
        let mut file_diags = Diagnostics::new(Some(&file));
        let steps = match parse_document(&text, Format::from_path(&file)) {
            Ok(root) => decode_steps_document(&root, &mut file_diags),
            Err(e) => {
                file_diags.error(&FieldPath::root(), e.pos, e.message);
                Vec::new()
            }
        };
        diags.extend(file_diags);
        Some(FetchedSteps {
            test_name: params.get_ci("TestName").map(Node::scalar_text),
            steps,
        })
    }
}
