//! The understanding evaluation set (eval/understanding) through the `rules` brain: it must stay at
//! or above 90% overall, and every file must load (a broken label fails here, not silently).

use std::path::Path;

use voxd::conversation::{brain::rules::RulesBrain, eval};

#[tokio::test]
async fn rules_understands_at_least_ninety_percent_of_the_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/understanding");
    let files = eval::files(&dir).unwrap();
    assert!(files.len() >= 5, "the set has its five scripts");
    let report = eval::run(&files, &RulesBrain).await.unwrap();
    let overall = report.overall();
    assert!(
        overall.total >= 300,
        "at least 300 labelled utterances, found {}",
        overall.total
    );
    assert!(
        overall.accuracy() >= 0.90,
        "rules understood {:.1}% of the set:\n{}",
        100.0 * overall.accuracy(),
        report.render()
    );
    // Every category is represented.
    for category in [
        "amount",
        "date",
        "time",
        "enum",
        "later",
        "reschedule",
        "wrong_person",
        "do_not_call",
        "question",
    ] {
        assert!(report.by_category().contains_key(category), "no {category} cases");
    }
}
