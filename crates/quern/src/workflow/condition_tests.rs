//! Unit tests for `condition.rs`.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::workflow::render::TaskOutput;

fn ctx() -> RenderContext {
    let mut tasks = HashMap::new();
    tasks.insert(
        "check".to_owned(),
        TaskOutput {
            result: Some(
                json!({"ok": true, "n": 3, "tags": ["a", "b"], "name": "big", "none": null}),
            ),
            ..Default::default()
        },
    );
    RenderContext {
        variables: [
            ("env".to_owned(), json!("prod")),
            ("limit".to_owned(), json!(2.5)),
        ]
        .into_iter()
        .collect(),
        tasks,
        ..Default::default()
    }
}

fn eval_str(s: &str) -> Result<bool, ConditionError> {
    Condition::parse(s)?.evaluate(&ctx(), None)
}

#[test]
fn evaluates_comparisons_and_logic() {
    let t = [
        "${check.result.ok}",
        "${check.result.n} == 3",
        "${check.result.n} == 3.0",
        "${check.result.n} > ${workflow.variables.limit}",
        "${check.result.n} >= 3 && ${check.result.n} <= 3",
        "${check.result.name} < 'zzz'",
        "'a' in ${check.result.tags}",
        "'ig' in ${check.result.name}",
        "${workflow.variables.env} in ['prod', 'staging']",
        "${check.result.none} == null",
        "${check.result.n} != '3'",
        "!false",
        "!(1 > 2)",
        "[1, [2]] == [1.0, [2]]",
        "${check.result} == {\"ok\": true}",
    ];
    for s in &t[..14] {
        assert_eq!(eval_str(s), Ok(true), "{s}");
    }
    assert!(
        eval_str(t[14]).is_err(),
        "object literals are not part of the language"
    );
    for s in [
        "${check.result.n} < 3",
        "'c' in ${check.result.tags}",
        "${check.result.ok} && false",
        "1 == '1'",
        "null == false",
        "-1.5e1 > -14",
    ] {
        assert_eq!(eval_str(s), Ok(false), "{s}");
    }
}

#[test]
fn precedence() {
    // && binds tighter than ||.
    assert_eq!(eval_str("true || false && false"), Ok(true));
    assert_eq!(eval_str("(true || false) && false"), Ok(false));
    // ! applies to the operand right after it.
    assert_eq!(eval_str("!true || true"), Ok(true));
    assert_eq!(eval_str("!(true || true)"), Ok(false));
    // Comparisons bind tighter than && and ||.
    assert_eq!(eval_str("1 < 2 && 2 < 3 || 1 > 2"), Ok(true));
    let c = Condition::parse("a() ").unwrap_err();
    assert_eq!(c.column, 1);
    let c = Condition::parse("true || false && false").unwrap();
    match &c.expr().kind {
        ExprKind::Or(_, r) => assert!(matches!(r.kind, ExprKind::And(_, _))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_circuit_skips_type_errors() {
    assert_eq!(eval_str("false && 1"), Ok(false));
    assert_eq!(eval_str("true || 'x'"), Ok(true));
    assert!(eval_str("true && 1").is_err());
}

#[test]
fn type_errors_are_errors_with_columns() {
    let cases = [
        (
            "${check.result.n} < 'x'",
            1,
            "cannot compare a number with a string",
        ),
        ("true && 1 > null", 9, "cannot compare a number with null"),
        ("1 && true", 1, "`&&` needs true or false, got a number"),
        ("!'x'", 2, "`!` needs true or false"),
        ("${check.result.n}", 1, "evaluated to a number"),
        ("1 in 5", 1, "`in` needs a list"),
        ("1 in 'abc'", 1, "needs a string on the left"),
        ("${check.result.missing} == 1", 1, "no key `missing`"),
    ];
    for (s, col, needle) in cases {
        let e = eval_str(s).unwrap_err();
        assert!(e.message.contains(needle), "{s}: {e}");
        assert_eq!(e.column, col, "{s}: {e}");
    }
}

#[test]
fn parse_errors_have_columns() {
    let cases = [
        ("", 1, "expected a value at the end"),
        ("1 ==", 5, "expected a value at the end"),
        ("(1 == 1", 8, "expected `)` at the end"),
        ("1 = 1", 3, "write `==`"),
        ("a == 1", 1, "unexpected `a`"),
        ("1 == 1 and 2 == 2", 8, "write `&&`"),
        ("1 < 2 < 3", 7, "cannot be chained"),
        ("1 == 1)", 7, "unexpected `)`"),
        ("'abc", 1, "unterminated string"),
        ("${x.result", 1, "unterminated `${`"),
        ("${x.bad} == 1", 4, "expected ${x.result…}"),
        ("[1, 2", 6, "expected `,` or `]`"),
        ("1.2.3 == 1", 1, "not a number"),
        ("1 == #", 6, "unexpected `#`"),
        ("1 & 2", 3, "write `&&`"),
        ("'a\\q'", 3, "unknown escape"),
        ("== 1", 1, "expected a value, found `==`"),
    ];
    for (s, col, needle) in cases {
        let e = Condition::parse(s).unwrap_err();
        assert!(e.message.contains(needle), "{s:?}: {e}");
        assert_eq!(e.column, col, "{s:?}: {e}");
    }
}

#[test]
fn all_combines_and_collects_references() {
    let c = Condition::all(vec![
        Condition::parse("${check.result.ok}").unwrap(),
        Condition::parse("${check.result.n} > 5").unwrap(),
    ])
    .unwrap();
    assert_eq!(
        c.source(),
        "(${check.result.ok}) && (${check.result.n} > 5)"
    );
    assert_eq!(c.evaluate(&ctx(), None), Ok(false));
    assert_eq!(c.references().len(), 2);
    assert!(Condition::all(vec![]).is_none());
}

#[test]
fn items_are_visible() {
    let v = json!({"size": 10});
    let c = Condition::parse("${item.size} > 5 && ${index} == 0").unwrap();
    assert_eq!(
        c.evaluate(
            &ctx(),
            Some(Item {
                value: &v,
                index: 0
            })
        ),
        Ok(true)
    );
    assert_eq!(
        c.evaluate(
            &ctx(),
            Some(Item {
                value: &v,
                index: 1
            })
        ),
        Ok(false)
    );
}
