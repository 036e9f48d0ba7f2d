//! Statements built at run time (filters, `IN` lists): SQL text with `$n`
//! placeholders and the values to bind to them.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

/// A value to bind to a dynamically built query.
#[derive(Clone)]
pub(super) enum Arg {
    I64(i64),
    Text(String),
}

/// A dynamically built statement: SQL text plus its `$n` arguments.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Arg>,
}

impl Sql {
    pub(super) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }
    /// Appends `$n` for a new argument.
    pub(super) fn arg(&mut self, a: Arg) -> &mut Self {
        use std::fmt::Write;
        self.args.push(a);
        let _ = write!(self.text, "${}", self.args.len());
        self
    }
    pub(super) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    pub(super) fn query(self) -> Query<'static, Any, AnyArguments> {
        let mut qry = sqlx::query(AssertSqlSafe(self.text));
        for a in self.args {
            qry = match a {
                Arg::I64(v) => qry.bind(v),
                Arg::Text(v) => qry.bind(v),
            };
        }
        qry
    }
}
