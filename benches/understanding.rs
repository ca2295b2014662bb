//! Understanding: accuracy per category and per brain on the labelled set in eval/understanding,
//! with every miss listed, and the time per decision.
//!
//! Run: `cargo bench --bench understanding`. Brains: `VOXD_EVAL_BRAINS` (comma-separated, default
//! `rules`); `openai` and `hybrid` use the `VOXD_OPENAI_*` settings, e.g. a local llama-server from
//! `scripts/local-llm.sh serve` (not run in CI: it needs the model).

use std::path::Path;

use voxd::conversation::{brain, eval};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/understanding");
    let files = eval::files(&dir)?;
    let brains = std::env::var("VOXD_EVAL_BRAINS").unwrap_or_else(|_| "rules".into());
    let mut summary = Vec::new();
    for name in brains.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let brain = brain::from_name(name).map_err(anyhow::Error::msg)?;
        let report = eval::run(&files, &*brain).await?;
        print!("{}", report.render());
        let all = report.overall();
        summary.push(format!(
            "{name}: {}/{} = {:.1}%, p50 {:.1} ms, p95 {:.1} ms per decision",
            all.right,
            all.total,
            100.0 * all.accuracy(),
            report.latency(0.5),
            report.latency(0.95)
        ));
    }
    println!("\nsummary");
    for line in summary {
        println!("  {line}");
    }
    Ok(())
}
