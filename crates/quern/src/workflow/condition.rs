//! The `when:` expression language.
//!
//! ```text
//! expr    := or
//! or      := and ( "||" and )*
//! and     := cmp ( "&&" cmp )*
//! cmp     := unary ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" ) unary )?
//! unary   := "!" unary | primary
//! primary := number | string | true | false | null | ${…} | "(" expr ")" | "[" expr, … "]"
//! ```
//!
//! `!` binds to the operand right after it, as in C and JavaScript: write `!(a == b)`.
//! Values follow JSON semantics: `==` compares any two values (numbers by value, so
//! `1 == 1.0`; values of different types are unequal); `<`, `<=`, `>`, `>=` compare two
//! numbers or two strings and anything else is a type error; `x in list` tests membership
//! with `==`, `s in string` tests for a substring; `&&`, `||` and `!` need booleans and
//! short-circuit. The whole condition must evaluate to `true` or `false`. Strings are
//! literal (no `${…}` inside them).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

use super::reference::{Reference, TemplateError, parse_reference};
use super::render::{Item, RenderContext, type_name};

/// A parse or evaluation error with the 1-based column in the expression it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    /// What is wrong.
    pub message: String,
    /// 1-based column (in characters) within the expression.
    pub column: usize,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (column {})", self.message, self.column)
    }
}

impl std::error::Error for ConditionError {}

impl From<TemplateError> for ConditionError {
    fn from(e: TemplateError) -> Self {
        ConditionError {
            message: e.message,
            column: e.column,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::In => "in",
        }
    }
}

/// A parsed expression; `column` is where it starts (1-based).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub column: usize,
}

/// The forms an expression takes.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Literal(Value),
    Ref(Reference),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
}

/// A parsed `when:` condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    source: String,
    expr: Expr,
}

impl Condition {
    /// Parses an expression.
    pub fn parse(source: &str) -> Result<Condition, ConditionError> {
        let tokens = tokenize(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end_column: source.chars().count() + 1,
        };
        let expr = p.expr()?;
        if let Some(t) = p.peek() {
            return Err(ConditionError {
                message: format!("unexpected {} after the end of the expression", t.tok),
                column: t.column,
            });
        }
        Ok(Condition {
            source: source.to_owned(),
            expr,
        })
    }

    /// Combines several conditions that must all hold (the `conditions: [..]` spelling).
    /// `None` for an empty list.
    pub fn all(conditions: Vec<Condition>) -> Option<Condition> {
        let mut it = conditions.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, c| Condition {
            source: format!("({}) && ({})", acc.source, c.source),
            expr: Expr {
                column: acc.expr.column,
                kind: ExprKind::And(Box::new(acc.expr), Box::new(c.expr)),
            },
        }))
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Every `${…}` reference, in order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        collect_refs(&self.expr, &mut out);
        out
    }

    /// Evaluates the condition; anything but a boolean result is an error.
    pub fn evaluate(
        &self,
        ctx: &RenderContext,
        item: Option<Item<'_>>,
    ) -> Result<bool, ConditionError> {
        let v = eval(&self.expr, ctx, item)?;
        match v {
            Value::Bool(b) => Ok(b),
            other => Err(ConditionError {
                message: format!(
                    "the condition evaluated to {} ({}), not true or false",
                    type_name(&other),
                    short(&other)
                ),
                column: self.expr.column,
            }),
        }
    }
}

fn collect_refs<'a>(e: &'a Expr, out: &mut Vec<&'a Reference>) {
    match &e.kind {
        ExprKind::Literal(_) => {}
        ExprKind::Ref(r) => out.push(r),
        ExprKind::List(items) => items.iter().for_each(|x| collect_refs(x, out)),
        ExprKind::Not(x) => collect_refs(x, out),
        ExprKind::And(a, b) | ExprKind::Or(a, b) | ExprKind::Cmp(_, a, b) => {
            collect_refs(a, out);
            collect_refs(b, out);
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

// ---- tokenizer ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Not,
    And,
    Or,
    Op(CmpOp),
    Lit(Value),
    Ref(Reference),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::Not => f.write_str("`!`"),
            Tok::And => f.write_str("`&&`"),
            Tok::Or => f.write_str("`||`"),
            Tok::Op(op) => write!(f, "`{}`", op.as_str()),
            Tok::Lit(v) => write!(f, "`{v}`"),
            Tok::Ref(r) => write!(f, "`{r}`"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    column: usize,
}

fn tokenize(src: &str) -> Result<Vec<Token>, ConditionError> {
    let c: Vec<char> = src.chars().collect();
    let err = |i: usize, m: String| ConditionError {
        message: m,
        column: i + 1,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let start = i;
        let two = |a: char, b: char| c[i] == a && c.get(i + 1) == Some(&b);
        let (tok, len) = match c[i] {
            ch if ch.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            _ if two('=', '=') => (Tok::Op(CmpOp::Eq), 2),
            _ if two('!', '=') => (Tok::Op(CmpOp::Ne), 2),
            _ if two('<', '=') => (Tok::Op(CmpOp::Le), 2),
            _ if two('>', '=') => (Tok::Op(CmpOp::Ge), 2),
            _ if two('&', '&') => (Tok::And, 2),
            _ if two('|', '|') => (Tok::Or, 2),
            '<' => (Tok::Op(CmpOp::Lt), 1),
            '>' => (Tok::Op(CmpOp::Gt), 1),
            '!' => (Tok::Not, 1),
            '=' => return Err(err(i, "unexpected `=`: write `==` to compare".into())),
            '&' => return Err(err(i, "unexpected `&`: write `&&`".into())),
            '|' => return Err(err(i, "unexpected `|`: write `||`".into())),
            '$' if c.get(i + 1) == Some(&'{') => {
                let close = c[i + 2..]
                    .iter()
                    .position(|x| *x == '}')
                    .ok_or_else(|| err(i, "unterminated `${`: missing `}`".into()))?;
                let inner: String = c[i + 2..i + 2 + close].iter().collect();
                let r = parse_reference(&inner, i + 2)?;
                (Tok::Ref(r), close + 3)
            }
            q @ ('"' | '\'') => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match c.get(j) {
                        None => return Err(err(i, "unterminated string".into())),
                        Some(ch) if *ch == q => break,
                        Some('\\') => {
                            let e = c
                                .get(j + 1)
                                .ok_or_else(|| err(j, "unterminated string".into()))?;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' | '"' | '\'' => *e,
                                other => {
                                    return Err(err(j, format!("unknown escape `\\{other}`")));
                                }
                            });
                            j += 2;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Lit(Value::String(s)), j + 1 - i)
            }
            ch if ch.is_ascii_digit()
                || (ch == '-' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut j = i + 1;
                while j < c.len()
                    && (c[j].is_ascii_alphanumeric()
                        || c[j] == '.'
                        || c[j] == '_'
                        || ((c[j] == '-' || c[j] == '+') && matches!(c[j - 1], 'e' | 'E')))
                {
                    j += 1;
                }
                let text: String = c[i..j].iter().collect();
                let v: Value = serde_json::from_str::<serde_json::Number>(&text)
                    .map(Value::Number)
                    .map_err(|_| err(i, format!("`{text}` is not a number")))?;
                (Tok::Lit(v), j - i)
            }
            ch if ch.is_ascii_alphabetic() || ch == '_' => {
                let mut j = i;
                while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                let word: String = c[i..j].iter().collect();
                let tok = match word.as_str() {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "null" => Tok::Lit(Value::Null),
                    "in" => Tok::Op(CmpOp::In),
                    "and" => return Err(err(i, "unexpected `and`: write `&&`".into())),
                    "or" => return Err(err(i, "unexpected `or`: write `||`".into())),
                    "not" => return Err(err(i, "unexpected `not`: write `!`".into())),
                    _ => {
                        return Err(err(
                            i,
                            format!(
                                "unexpected `{word}`: quote strings ('{word}') and write references as ${{…}}"
                            ),
                        ));
                    }
                };
                (tok, j - i)
            }
            other => return Err(err(i, format!("unexpected `{other}`"))),
        };
        out.push(Token {
            tok,
            column: start + 1,
        });
        i = start + len;
    }
    Ok(out)
}

// ---- parser ------------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_column: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek().is_some_and(|t| &t.tok == tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), ConditionError> {
        match self.next() {
            Some(t) if t.tok == tok => Ok(()),
            Some(t) => Err(ConditionError {
                message: format!("expected {what}, found {}", t.tok),
                column: t.column,
            }),
            None => Err(ConditionError {
                message: format!("expected {what} at the end of the expression"),
                column: self.end_column,
            }),
        }
    }

    fn expr(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.and()?;
        while self.eat(&Tok::Or) {
            let right = self.and()?;
            left = Expr {
                column: left.column,
                kind: ExprKind::Or(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut left = self.cmp()?;
        while self.eat(&Tok::And) {
            let right = self.cmp()?;
            left = Expr {
                column: left.column,
                kind: ExprKind::And(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Expr, ConditionError> {
        let left = self.unary()?;
        let Some(Token {
            tok: Tok::Op(op),
            column,
        }) = self.peek().cloned()
        else {
            return Ok(left);
        };
        self.pos += 1;
        let right = self.unary()?;
        if let Some(Token {
            tok: Tok::Op(_),
            column: c2,
        }) = self.peek()
        {
            return Err(ConditionError {
                message: "comparisons cannot be chained: combine them with && and use parentheses"
                    .into(),
                column: *c2,
            });
        }
        Ok(Expr {
            column: left.column.min(column),
            kind: ExprKind::Cmp(op, Box::new(left), Box::new(right)),
        })
    }

    fn unary(&mut self) -> Result<Expr, ConditionError> {
        if let Some(Token {
            tok: Tok::Not,
            column,
        }) = self.peek().cloned()
        {
            self.pos += 1;
            let inner = self.unary()?;
            return Ok(Expr {
                column,
                kind: ExprKind::Not(Box::new(inner)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ConditionError> {
        let Some(t) = self.next() else {
            return Err(ConditionError {
                message: "expected a value at the end of the expression".into(),
                column: self.end_column,
            });
        };
        let kind = match t.tok {
            Tok::Lit(v) => ExprKind::Literal(v),
            Tok::Ref(r) => ExprKind::Ref(r),
            Tok::LParen => {
                let inner = self.expr()?;
                self.expect(Tok::RParen, "`)`")?;
                return Ok(Expr {
                    column: t.column,
                    kind: inner.kind,
                });
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        items.push(self.expr()?);
                        if self.eat(&Tok::RBracket) {
                            break;
                        }
                        self.expect(Tok::Comma, "`,` or `]`")?;
                    }
                }
                ExprKind::List(items)
            }
            other => {
                return Err(ConditionError {
                    message: format!("expected a value, found {other}"),
                    column: t.column,
                });
            }
        };
        Ok(Expr {
            kind,
            column: t.column,
        })
    }
}

// ---- evaluation --------------------------------------------------------------------------

fn eval(e: &Expr, ctx: &RenderContext, item: Option<Item<'_>>) -> Result<Value, ConditionError> {
    let at = |m: String| ConditionError {
        message: m,
        column: e.column,
    };
    let boolean = |x: &Expr, what: &str| -> Result<bool, ConditionError> {
        match eval(x, ctx, item)? {
            Value::Bool(b) => Ok(b),
            other => Err(ConditionError {
                message: format!(
                    "{what} needs true or false, got {} ({})",
                    type_name(&other),
                    short(&other)
                ),
                column: x.column,
            }),
        }
    };
    Ok(match &e.kind {
        ExprKind::Literal(v) => v.clone(),
        ExprKind::Ref(r) => ctx.resolve(r, item).map_err(|re| at(re.to_string()))?,
        ExprKind::List(items) => Value::Array(
            items
                .iter()
                .map(|x| eval(x, ctx, item))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Not(x) => Value::Bool(!boolean(x, "`!`")?),
        ExprKind::And(a, b) => Value::Bool(boolean(a, "`&&`")? && boolean(b, "`&&`")?),
        ExprKind::Or(a, b) => Value::Bool(boolean(a, "`||`")? || boolean(b, "`||`")?),
        ExprKind::Cmp(op, a, b) => {
            let (l, r) = (eval(a, ctx, item)?, eval(b, ctx, item)?);
            Value::Bool(match op {
                CmpOp::Eq => json_eq(&l, &r),
                CmpOp::Ne => !json_eq(&l, &r),
                CmpOp::In => match &r {
                    Value::Array(items) => items.iter().any(|x| json_eq(&l, x)),
                    Value::String(hay) => match &l {
                        Value::String(needle) => hay.contains(needle.as_str()),
                        other => {
                            return Err(at(format!(
                                "`in` a string needs a string on the left, got {}",
                                type_name(other)
                            )));
                        }
                    },
                    other => {
                        return Err(at(format!(
                            "`in` needs a list (or a string) on the right, got {} ({})",
                            type_name(other),
                            short(other)
                        )));
                    }
                },
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                    let ord = order(&l, &r).ok_or_else(|| {
                        at(format!(
                            "cannot compare {} with {} using `{}` (only two numbers or two strings)",
                            type_name(&l),
                            type_name(&r),
                            op.as_str()
                        ))
                    })?;
                    match op {
                        CmpOp::Lt => ord == Ordering::Less,
                        CmpOp::Le => ord != Ordering::Greater,
                        CmpOp::Gt => ord == Ordering::Greater,
                        _ => ord != Ordering::Less,
                    }
                }
            })
        }
    })
}

fn num_cmp(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn order(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Number(a), Value::Number(b)) => num_cmp(a, b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
