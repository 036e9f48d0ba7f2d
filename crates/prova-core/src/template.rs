//! The Go `text/template` subset ConTest step parameters use.
//!
//! ConTest expands every step parameter string as a Go template over the
//! target, with a few functions. This is the part of that language the
//! parameters actually use, written by hand:
//!
//! - text with `{{ ... }}` actions, trim markers `{{- ` and ` -}}` (Go
//!   semantics: they remove the adjacent spaces, tabs and newlines), and
//!   comments `{{/* ... */}}`;
//! - the target's fields `.ID`, `.FQDN`, `.PrimaryIPv4`, `.PrimaryIPv6`
//!   (exact case, as Go), and `.` alone, which renders as the target's ID;
//! - string literals (`"..."` with Go escapes, and raw `` `...` ``), integer
//!   literals, parenthesised pipelines, and pipes (`.FQDN | ToUpper`, where
//!   the piped value becomes the last argument);
//! - the functions `ToUpper`, `ToLower`, `Title` (Go's `strings.Title`),
//!   `StringVar "label.name"` and `IntVar "label.name"` (a variable emitted
//!   by an earlier step of the same target).
//!
//! Why not a crate: `gtmpl` exists but is unmaintained, and it resolves
//! fields and functions only when executing, so it cannot report an unknown
//! field or function when the descriptor is validated, nor say where in the
//! string the mistake is. Here [`Template::parse`] checks fields, functions,
//! arity and argument types, and every error carries a byte offset.

use crate::target::Target;

/// A parsed template: literal text and actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    literal: bool,
}

/// A template that could not be parsed or rendered, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// Byte offset in the template text.
    pub offset: usize,
}

/// What a template renders against.
pub trait TemplateContext {
    fn target(&self) -> &Target;
    /// A variable emitted by an earlier step of the same target: `label.name`.
    fn var(&self, step_label: &str, name: &str) -> Option<&serde_json::Value>;
}

/// Convenience: parse + render.
pub fn render(text: &str, ctx: &dyn TemplateContext) -> Result<String, TemplateError> {
    Template::parse(text)?.render(ctx)
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError {
        message: message.into(),
        offset,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Action(Expr),
}

/// An expression: a value and the functions applied to it, innermost
/// first. Every function takes exactly one argument, so `ToUpper (ToLower
/// .ID)` and `.ID | ToLower | ToUpper` are the same chain. Keeping it flat
/// (rather than a tree of calls) means rendering, reference collection,
/// cloning and dropping never recurse, however long a pipeline is.
#[derive(Debug, Clone, PartialEq)]
struct Expr {
    base: Operand,
    calls: Vec<Call>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Dot,
    Field(Field),
    Str(String),
    Int(i64),
}

/// One function application; `offset` is where the function is named.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Call {
    func: Func,
    offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Id,
    Fqdn,
    Ipv4,
    Ipv6,
}

const FIELDS: [(&str, Field); 4] = [
    ("ID", Field::Id),
    ("FQDN", Field::Fqdn),
    ("PrimaryIPv4", Field::Ipv4),
    ("PrimaryIPv6", Field::Ipv6),
];

impl Field {
    fn get(self, t: &Target) -> &str {
        match self {
            Field::Id => &t.id,
            Field::Fqdn => &t.fqdn,
            Field::Ipv4 => &t.primary_ipv4,
            Field::Ipv6 => &t.primary_ipv6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    ToUpper,
    ToLower,
    Title,
    StringVar,
    IntVar,
}

const FUNCS: [(&str, Func); 5] = [
    ("ToUpper", Func::ToUpper),
    ("ToLower", Func::ToLower),
    ("Title", Func::Title),
    ("StringVar", Func::StringVar),
    ("IntVar", Func::IntVar),
];

impl Func {
    fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// Every function takes one string, so types can be checked when
    /// parsing, as ConTest would fail when executing.
    fn result(self) -> Ty {
        match self {
            Func::IntVar => Ty::Int,
            _ => Ty::Str,
        }
    }
}

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Str,
    Int,
    Target,
}

impl Ty {
    fn describe(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Int => "an integer",
            Ty::Target => "the target (use .ID or .FQDN)",
        }
    }
}

/// Go's trim markers remove these.
const SPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// Parentheses nested deeper than this are refused: the parser recurses
/// once per level (about 6 KiB of stack per level in a debug build, far
/// less in release), and the limit keeps that far from any stack's end:
/// 16 levels fit three times over in a 256 KiB stack. ConTest templates
/// nest two at most.
pub const MAX_PAREN_DEPTH: usize = 16;

/// Functions applied in one action (pipes and calls together). Rendering is
/// iterative, so this bounds the work one action costs per target, not the
/// stack; ConTest descriptors use one or two.
pub const MAX_CALLS_PER_ACTION: usize = 1_000;

impl Template {
    /// Parses and checks: unknown functions and unknown fields are errors
    /// here (validation time).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut pos = 0;
        let mut trim_next = false;
        while let Some(found) = text[pos..].find("{{") {
            let open = pos + found;
            let mut literal = &text[pos..open];
            if trim_next {
                literal = literal.trim_start_matches(SPACE);
            }
            let left_trim =
                text[open + 2..].starts_with('-') && text[open + 3..].starts_with(SPACE);
            if left_trim {
                literal = literal.trim_end_matches(SPACE);
            }
            push_text(&mut pieces, literal);
            let start = open + 2 + usize::from(left_trim);
            let (expr, end, trim) = parse_action(text, open, start)?;
            pieces.extend(expr.map(Piece::Action));
            pos = end;
            trim_next = trim;
        }
        let rest = &text[pos..];
        push_text(
            &mut pieces,
            if trim_next {
                rest.trim_start_matches(SPACE)
            } else {
                rest
            },
        );
        Ok(Template {
            pieces,
            literal: !text.contains("{{"),
        })
    }

    /// True when the text has no actions (rendering returns it unchanged).
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// Every `StringVar "x.y"` / `IntVar "x.y"` reference with a literal
    /// argument, as ("x", "y"), for validation that the step label exists
    /// earlier.
    pub fn var_refs(&self) -> Vec<(String, String)> {
        let mut refs = Vec::new();
        for piece in &self.pieces {
            if let Piece::Action(e) = piece {
                collect_refs(e, &mut refs);
            }
        }
        refs
    }

    pub fn render(&self, ctx: &dyn TemplateContext) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(e) => match eval(e, ctx)? {
                    Val::Str(s) => out.push_str(&s),
                    Val::Int(i) => out.push_str(&i.to_string()),
                    Val::Target => out.push_str(&ctx.target().id),
                },
            }
        }
        Ok(out)
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_owned()));
    }
}

/// Only the innermost call can take a literal: every later one takes the
/// result of the call before it.
fn collect_refs(e: &Expr, refs: &mut Vec<(String, String)>) {
    if let (Operand::Str(s), Some(first)) = (&e.base, e.calls.first())
        && matches!(first.func, Func::StringVar | Func::IntVar)
        && let Some((label, name)) = s.split_once('.')
    {
        refs.push((label.to_owned(), name.to_owned()));
    }
}

/// Parses one action starting at `start` (just after `{{` and any trim
/// marker). Returns the expression (none for a comment), the offset after
/// the closing `}}`, and whether the closing delimiter trims.
fn parse_action(
    text: &str,
    open: usize,
    start: usize,
) -> Result<(Option<Expr>, usize, bool), TemplateError> {
    let mut lex = Lexer {
        src: text,
        pos: start,
        open,
        peeked: None,
    };
    lex.skip_space();
    if text[lex.pos..].starts_with("/*") {
        let Some(len) = text[lex.pos + 2..].find("*/") else {
            return fail(open, "unclosed comment");
        };
        lex.pos += 2 + len + 2;
        return match lex.next()? {
            Tok {
                kind: Kind::Close(trim),
                ..
            } => Ok((None, lex.pos, trim)),
            t => fail(t.offset, "comment ends before closing delimiter"),
        };
    }
    let mut parser = Parser {
        lex,
        depth: 0,
        calls: 0,
    };
    let (expr, _) = parser.pipeline()?;
    match parser.lex.next()? {
        Tok {
            kind: Kind::Close(trim),
            ..
        } => Ok((Some(expr), parser.lex.pos, trim)),
        t => fail(
            t.offset,
            format!("unexpected {} in action", t.kind.describe()),
        ),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Close(bool),
    Pipe,
    LParen,
    RParen,
    Dot,
    Field(Field),
    Ident(String),
    Str(String),
    Int(i64),
}

impl Kind {
    fn describe(&self) -> String {
        match self {
            Kind::Close(_) => "}}".into(),
            Kind::Pipe => "|".into(),
            Kind::LParen => "(".into(),
            Kind::RParen => ")".into(),
            Kind::Dot => ".".into(),
            Kind::Field(_) => "field".into(),
            Kind::Ident(name) => name.clone(),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Int(i) => i.to_string(),
        }
    }

    /// Tokens that end a command's argument list.
    fn ends_command(&self) -> bool {
        matches!(self, Kind::Close(_) | Kind::Pipe | Kind::RParen)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    kind: Kind,
    offset: usize,
}

/// Splits the inside of one action into tokens. `pos` is always on a char
/// boundary of `src`.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Where the action's `{{` is, for "unclosed action".
    open: usize,
    peeked: Option<Tok>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(SPACE).len();
    }

    fn peek(&mut self) -> Result<&Tok, TemplateError> {
        let tok = match self.peeked.take() {
            Some(t) => t,
            None => self.scan()?,
        };
        Ok(self.peeked.insert(tok))
    }

    fn next(&mut self) -> Result<Tok, TemplateError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.scan(),
        }
    }

    fn scan(&mut self) -> Result<Tok, TemplateError> {
        let spaced = self.rest().starts_with(SPACE);
        self.skip_space();
        let offset = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return fail(self.open, "unclosed action: missing }}");
        };
        let (kind, len) = if rest.starts_with("}}") {
            (Kind::Close(false), 2)
        } else if rest.starts_with("-}}") && spaced {
            (Kind::Close(true), 3)
        } else {
            match c {
                '|' => (Kind::Pipe, 1),
                '(' => (Kind::LParen, 1),
                ')' => (Kind::RParen, 1),
                '.' => self.field(rest, offset)?,
                '"' => quoted(rest, offset)?,
                '`' => raw(rest, offset)?,
                '0'..='9' | '-' | '+' => number(rest, offset)?,
                c if is_ident(c) => {
                    let name = ident(rest);
                    (Kind::Ident(name.to_owned()), name.len())
                }
                '$' => return fail(offset, "variables ($x) are not supported"),
                c => return fail(offset, format!("unexpected {c:?} in action")),
            }
        };
        self.pos += len;
        Ok(Tok { kind, offset })
    }

    /// `.` alone, or `.Name` (a chain such as `.FQDN.X` is read whole, to
    /// be reported as one unknown field).
    fn field(&self, rest: &str, offset: usize) -> Result<(Kind, usize), TemplateError> {
        let mut len = 0;
        while rest[len..].starts_with('.') && rest[len + 1..].starts_with(is_ident) {
            len += 1 + ident(&rest[len + 1..]).len();
        }
        if len == 0 {
            return Ok((Kind::Dot, 1));
        }
        let name = &rest[1..len];
        match FIELDS.iter().find(|(n, _)| *n == name) {
            Some((_, f)) => Ok((Kind::Field(*f), len)),
            None => fail(
                offset,
                format!(
                    "unknown field .{name}; the target has .ID, .FQDN, .PrimaryIPv4, .PrimaryIPv6"
                ),
            ),
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// A double-quoted string with Go's escapes.
fn quoted(rest: &str, offset: usize) -> Result<(Kind, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Kind::Str(out), i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '\\' | '"' => Some(e),
                    _ => None,
                };
                let decoded = match (simple, e) {
                    (Some(c), _) => Some(c),
                    (None, 'x') => hex_escape(&mut chars, 2, 16),
                    (None, 'u') => hex_escape(&mut chars, 4, 16),
                    (None, 'U') => hex_escape(&mut chars, 8, 16),
                    (None, '0'..='7') => octal_escape(e, &mut chars),
                    _ => None,
                };
                match decoded {
                    Some(c) => out.push(c),
                    None => return fail(offset + i, "invalid escape in quoted string"),
                }
            }
            c => out.push(c),
        }
    }
    fail(offset, "unterminated quoted string")
}

/// `\x` escapes stand for one byte in Go; only ASCII is accepted, as other
/// bytes would not form valid UTF-8 on their own.
fn hex_escape(
    chars: &mut impl Iterator<Item = (usize, char)>,
    n: usize,
    radix: u32,
) -> Option<char> {
    let mut v: u32 = 0;
    for _ in 0..n {
        v = v
            .checked_mul(radix)?
            .checked_add(chars.next()?.1.to_digit(radix)?)?;
    }
    if n == 2 && v > 0x7f {
        return None;
    }
    char::from_u32(v)
}

fn octal_escape(first: char, chars: &mut impl Iterator<Item = (usize, char)>) -> Option<char> {
    let mut v = first.to_digit(8)?;
    for _ in 0..2 {
        v = v * 8 + chars.next()?.1.to_digit(8)?;
    }
    if v > 0x7f {
        return None;
    }
    char::from_u32(v)
}

fn raw(rest: &str, offset: usize) -> Result<(Kind, usize), TemplateError> {
    match rest[1..].find('`') {
        Some(end) => Ok((Kind::Str(rest[1..1 + end].to_owned()), end + 2)),
        None => fail(offset, "unterminated raw string"),
    }
}

/// An integer literal as Go writes it: optional sign, decimal, `0x`, `0o`,
/// `0b` or leading-zero octal, `_` separators.
fn number(rest: &str, offset: usize) -> Result<(Kind, usize), TemplateError> {
    let body_start = usize::from(rest.starts_with(['-', '+']));
    let len = body_start
        + rest[body_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len() - body_start);
    let text = &rest[..len];
    let body: String = text[body_start..].chars().filter(|&c| c != '_').collect();
    let lower = body.to_ascii_lowercase();
    let parsed = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2)
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8)
    } else {
        body.parse::<i64>()
    };
    match parsed {
        Ok(v) if text.starts_with('-') => Ok((Kind::Int(-v), len)),
        Ok(v) => Ok((Kind::Int(v), len)),
        Err(_) if body.is_empty() => fail(offset, format!("unexpected {:?} in action", &text[..1])),
        Err(_) => fail(
            offset,
            format!("invalid number {text} (only integers are supported)"),
        ),
    }
}

/// Recursive descent over an action's tokens; folds pipes into calls and
/// checks types as it goes. It recurses only into parentheses, at most
/// [`MAX_PAREN_DEPTH`] deep; pipes are a loop.
struct Parser<'a> {
    lex: Lexer<'a>,
    depth: usize,
    /// Functions applied so far in this action, against
    /// [`MAX_CALLS_PER_ACTION`].
    calls: usize,
}

impl Parser<'_> {
    /// `command ( '|' command )*`, stopping before `}}` or `)`.
    fn pipeline(&mut self) -> Result<(Expr, Ty), TemplateError> {
        let mut acc = self.command(None)?;
        while self.lex.peek()?.kind == Kind::Pipe {
            self.lex.next()?;
            acc = self.command(Some(acc))?;
        }
        Ok(acc)
    }

    /// A function call with its arguments (plus the piped value, last), or
    /// a single operand.
    fn command(&mut self, piped: Option<(Expr, Ty)>) -> Result<(Expr, Ty), TemplateError> {
        let tok = self.lex.next()?;
        let Kind::Ident(name) = &tok.kind else {
            if piped.is_some() {
                return fail(tok.offset, "only a function can follow | in a pipeline");
            }
            let operand = self.operand(tok.clone())?;
            let after = self.lex.peek()?;
            if !after.kind.ends_command() {
                let offset = after.offset;
                return fail(
                    offset,
                    format!(
                        "{} is not a function and takes no arguments",
                        tok.kind.describe()
                    ),
                );
            }
            return Ok(operand);
        };
        let func = lookup(name, tok.offset)?;
        self.count_call(tok.offset)?;
        let mut args = Vec::new();
        while !self.lex.peek()?.kind.ends_command() {
            let t = self.lex.next()?;
            args.push((self.operand(t.clone())?, t.offset));
        }
        if let Some((e, ty)) = piped {
            args.push(((e, ty), tok.offset));
        }
        call(func, args, tok.offset)
    }

    fn count_call(&mut self, offset: usize) -> Result<(), TemplateError> {
        self.calls += 1;
        if self.calls > MAX_CALLS_PER_ACTION {
            return fail(
                offset,
                format!(
                    "too many functions in one action: at most {MAX_CALLS_PER_ACTION} (pipes and calls together)"
                ),
            );
        }
        Ok(())
    }

    fn operand(&mut self, tok: Tok) -> Result<(Expr, Ty), TemplateError> {
        match tok.kind {
            Kind::Dot => Ok((Expr::of(Operand::Dot), Ty::Target)),
            Kind::Field(f) => Ok((Expr::of(Operand::Field(f)), Ty::Str)),
            Kind::Str(s) => Ok((Expr::of(Operand::Str(s)), Ty::Str)),
            Kind::Int(i) => Ok((Expr::of(Operand::Int(i)), Ty::Int)),
            Kind::Ident(name) => {
                let func = lookup(&name, tok.offset)?;
                self.count_call(tok.offset)?;
                call(func, Vec::new(), tok.offset)
            }
            Kind::LParen => self.parenthesised(tok.offset),
            Kind::Close(_) | Kind::Pipe | Kind::RParen => fail(
                tok.offset,
                format!("missing value before {}", tok.kind.describe()),
            ),
        }
    }

    fn parenthesised(&mut self, offset: usize) -> Result<(Expr, Ty), TemplateError> {
        if self.depth >= MAX_PAREN_DEPTH {
            return fail(
                offset,
                format!("parentheses nested too deeply: at most {MAX_PAREN_DEPTH} levels"),
            );
        }
        self.depth += 1;
        let inner = self.pipeline()?;
        self.depth -= 1;
        match self.lex.next()? {
            Tok {
                kind: Kind::RParen, ..
            } => Ok(inner),
            t => fail(t.offset, format!("unclosed (: found {}", t.kind.describe())),
        }
    }
}

fn lookup(name: &str, offset: usize) -> Result<Func, TemplateError> {
    match FUNCS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => Ok(*f),
        None => fail(
            offset,
            format!("unknown function {name}; known: ToUpper, ToLower, Title, StringVar, IntVar"),
        ),
    }
}

/// Builds a call after checking arity, argument types and, for a literal
/// variable name, its `label.name` shape.
fn call(
    func: Func,
    args: Vec<((Expr, Ty), usize)>,
    offset: usize,
) -> Result<(Expr, Ty), TemplateError> {
    let count = args.len();
    let mut args = args.into_iter();
    let (Some(((mut expr, ty), at)), None) = (args.next(), args.next()) else {
        return fail(
            offset,
            format!(
                "wrong number of args for {}: want 1 got {count}",
                func.name()
            ),
        );
    };
    if ty != Ty::Str {
        return fail(
            at,
            format!("{} wants a string, got {}", func.name(), ty.describe()),
        );
    }
    if let (Func::StringVar | Func::IntVar, Operand::Str(s), []) =
        (func, &expr.base, expr.calls.as_slice())
    {
        split_var(s, at)?;
    }
    expr.calls.push(Call { func, offset });
    Ok((expr, func.result()))
}

impl Expr {
    fn of(base: Operand) -> Expr {
        Expr {
            base,
            calls: Vec::new(),
        }
    }
}

fn split_var(s: &str, offset: usize) -> Result<(&str, &str), TemplateError> {
    match s.split_once('.') {
        Some((label, name)) if !label.is_empty() && !name.is_empty() => Ok((label, name)),
        _ => fail(
            offset,
            format!("variable {s:?} should be \"steplabel.name\""),
        ),
    }
}

/// A rendered value.
enum Val {
    Str(String),
    Int(i64),
    Target,
}

/// Evaluates the base, then applies each call in turn: a loop, not a
/// recursion, whatever the chain's length.
fn eval(e: &Expr, ctx: &dyn TemplateContext) -> Result<Val, TemplateError> {
    let mut val = match &e.base {
        Operand::Dot => Val::Target,
        Operand::Field(f) => Val::Str(f.get(ctx.target()).to_owned()),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Int(i) => Val::Int(*i),
    };
    for &Call { func, offset } in &e.calls {
        let Val::Str(arg) = val else {
            // Types are checked when parsing; this is a safety net.
            return fail(offset, format!("{} wants a string", func.name()));
        };
        val = apply(func, &arg, offset, ctx)?;
    }
    Ok(val)
}

fn apply(
    func: Func,
    arg: &str,
    offset: usize,
    ctx: &dyn TemplateContext,
) -> Result<Val, TemplateError> {
    Ok(match func {
        Func::ToUpper => Val::Str(arg.to_uppercase()),
        Func::ToLower => Val::Str(arg.to_lowercase()),
        Func::Title => Val::Str(title(arg)),
        Func::StringVar => match lookup_var(arg, offset, ctx)? {
            serde_json::Value::String(s) => Val::Str(s.clone()),
            other => Val::Str(other.to_string()),
        },
        Func::IntVar => {
            let v = lookup_var(arg, offset, ctx)?;
            match v.as_i64() {
                Some(i) => Val::Int(i),
                None => return fail(offset, format!("variable {arg} is not an integer: {v}")),
            }
        }
    })
}

fn lookup_var<'c>(
    full: &str,
    offset: usize,
    ctx: &'c dyn TemplateContext,
) -> Result<&'c serde_json::Value, TemplateError> {
    let (label, name) = split_var(full, offset)?;
    match ctx.var(label, name) {
        Some(v) => Ok(v),
        None => fail(
            offset,
            format!(
                "variable {full} is not set: no earlier step labelled {label:?} emitted {name:?}"
            ),
        ),
    }
}

/// Go's `strings.Title`: upper-cases every letter that follows a separator.
/// ASCII letters, digits and `_` are not separators, other ASCII is; beyond
/// ASCII, only spaces are.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for c in s.chars() {
        if is_separator(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    c.is_whitespace()
}
