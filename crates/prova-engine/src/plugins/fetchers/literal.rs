//! `literal`: the steps are written in the descriptor
//! (`TestFetcherFetchParameters: {TestName, Steps: [...]}`).

use prova_core::descriptor::{check_keys, decode_steps};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;

use crate::plugin::{FetchedSteps, PrepareCtx, TestFetcher};

pub struct Literal;

impl TestFetcher for Literal {
    fn fetch(
        &self,
        params: &Node,
        path: &FieldPath,
        _ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<FetchedSteps> {
        let Some(map) = params.as_map() else {
            diags.error(
                path,
                params.pos,
                format!("expected {{TestName, Steps}}, found {}", params.type_name()),
            );
            return None;
        };
        check_keys(map, path, &["TestName", "Steps"], diags);
        let steps = match params.get_ci("Steps") {
            Some(s) => decode_steps(s, &path.key("Steps"), diags),
            None => {
                diags.error(
                    &path.key("Steps"),
                    params.pos,
                    "missing: expected a list of steps",
                );
                Vec::new()
            }
        };
        Some(FetchedSteps {
            test_name: params.get_ci("TestName").map(Node::scalar_text),
            steps,
        })
    }
}
