//! Fan-out and fan-in: static (several tasks on one), dynamic (`for_each` over an upstream
//! list at run time), results collected in item order whatever order the instances end in.

use quern::JobState;
use quern::model::WorkflowState;
use serde_json::json;

use super::harness::Env;

#[tokio::test]
async fn for_each_fans_out_and_the_next_task_gets_results_in_item_order() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: fanout
tasks:
  - id: split
    kind: step
    params: {name: split, return: {chunks: [[90, 2, 3], [60, 5], [30], [1, 8, 9, 10]]}}
  - id: sum_chunk
    kind: step
    depends_on: [split]
    for_each: ${split.result.chunks}
    params:
      name: "chunk ${index}"
      # Later items finish first, so completion order is the reverse of item order.
      sleep_ms: ${item[0]}
      return: {index: "${index}", items: "${item}", label: "chunk ${index} of ${split.result.chunks}"}
  - id: total
    kind: step
    depends_on: [sum_chunk]
    params: {name: total, parts: "${sum_chunk.result}", count: "${sum_chunk.result[3].items}"}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let parts = env.log.params("total")["parts"].clone();
    let indexes: Vec<_> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].clone())
        .collect();
    assert_eq!(
        indexes,
        [json!(0), json!(1), json!(2), json!(3)],
        "item order: {parts}"
    );
    assert_eq!(
        parts[1]["items"],
        json!([60, 5]),
        "${{item}} keeps its type"
    );
    assert_eq!(
        parts[0]["label"],
        json!("chunk 0 of [[90,2,3],[60,5],[30],[1,8,9,10]]")
    );
    assert_eq!(env.log.params("total")["count"], json!([1, 8, 9, 10]));
    assert_eq!(st.task("sum_chunk").unwrap().instances, Some(4));
    // The for_each task's own job holds the list too.
    assert_eq!(env.result(&st, "sum_chunk").await, parts);
    // 3 tasks + 4 instances, all succeeded.
    assert_eq!(st.counts.succeeded, 7, "{:?}", st.counts);
    env.stop().await;
}

#[tokio::test]
async fn static_fan_out_and_fan_in() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: static
tasks:
  - {id: root, kind: step, params: {name: root, return: 2}}
  - {id: a, kind: step, depends_on: [root], params: {name: a, return: "${root.result}"}}
  - {id: b, kind: step, depends_on: [root], params: {name: b, return: 3}}
  - {id: join, kind: step, depends_on: [a, b], params: {name: join, got: ["${a.result}", "${b.result}"]}}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Succeeded);
    assert_eq!(env.log.params("join")["got"], json!([2, 3]));
    assert_eq!(env.log.names().first().map(String::as_str), Some("root"));
    assert_eq!(env.log.names().last().map(String::as_str), Some("join"));
    env.stop().await;
}

#[tokio::test]
async fn per_item_conditions_empty_lists_and_failing_instances() {
    let env = Env::start().await;
    let st = env
        .run(
            r#"
name: items
tasks:
  - id: evens
    kind: step
    for_each: [1, 2, 3, 4]
    when: ${item} > 2
    params: {name: "item ${item}", return: "${item}"}
  - id: none
    kind: step
    for_each: []
    params: {name: never}
  - id: after
    kind: step
    depends_on: [evens, none]
    params: {name: after, evens: "${evens.result}", none: "${none.result}"}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    let p = env.log.params("after");
    assert_eq!(
        p["evens"],
        json!([null, null, 3, 4]),
        "skipped instances are null"
    );
    assert_eq!(p["none"], json!([]));
    assert_eq!(env.log.count("never"), 0);

    let st = env
        .run(
            r#"
name: failing
on_failure: continue
tasks:
  - id: each
    kind: step
    for_each: [ok, bad, ok]
    params: {name: "each ${index}", fail: "${item}"}
  - {id: after, kind: step, depends_on: [each], params: {name: after_fail}}
"#,
        )
        .await;
    assert_eq!(st.record.state, WorkflowState::Failed);
    let parent = env.job(&st, "each").await;
    assert_eq!(parent.state, JobState::Dead);
    let msg = &parent.errors.last().unwrap().message;
    assert!(msg.contains("3 of 3 instances failed"), "{msg}");
    assert_eq!(env.job(&st, "after").await.state, JobState::Skipped);
    env.stop().await;
}

#[tokio::test]
async fn a_fan_out_of_ten_thousand_items() {
    const N: usize = 10_000;
    let env = Env::start().await;
    let items: Vec<usize> = (0..N).collect();
    let yaml = format!(
        r#"
name: big
variables: {{items: {}}}
tasks:
  - id: each
    kind: step
    for_each: ${{workflow.variables.items}}
    params: {{return: "${{index}}"}}
  - id: sum
    kind: step
    depends_on: [each]
    params: {{name: sum, n: "${{each.result[{last}]}}"}}
"#,
        serde_json::to_string(&items).unwrap(),
        last = N - 1
    );
    let st = env.run(&yaml).await;
    assert_eq!(st.record.state, WorkflowState::Succeeded, "{:?}", st.record);
    assert_eq!(env.log.params("sum")["n"], json!(N - 1));
    let all = env.result(&st, "each").await;
    assert_eq!(all.as_array().unwrap().len(), N);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .enumerate()
            .all(|(i, v)| v == &json!(i))
    );
    assert_eq!(st.counts.succeeded as usize, N + 2);
    env.stop().await;
}
