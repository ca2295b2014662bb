//! `voxd chat`: talk to a script in the terminal as the callee. One line of input is one thing the
//! callee says; end of input (or `/hangup`) hangs up. Silence counts in real time, so the assistant
//! prompts and gives up as it would on a call. At the end the analysis is printed.

use std::{io::IsTerminal, path::Path, sync::Arc, time::Duration};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::clock::SystemClock;
use crate::conversation::{
    analysis::Analysis,
    brain,
    context::CallContext,
    script::Script,
    text::Conversation,
    tools::{RecordingSms, Tools},
    transcript::Role,
};

/// `voxd chat` options.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The script, YAML or JSON.
    #[arg(long)]
    pub script: std::path::PathBuf,
    /// rules (offline, default), openai or hybrid (VOXD_OPENAI_* settings).
    #[arg(long, default_value = "rules")]
    pub brain: String,
    /// The callee's first name, for {{contact.first_name}}.
    #[arg(long)]
    pub first_name: Option<String>,
    /// The callee's phone number, for {{contact.phone_number}}.
    #[arg(long)]
    pub phone: Option<String>,
    /// The callee's email, for {{contact.email}}.
    #[arg(long)]
    pub email: Option<String>,
    /// The team's and callee's IANA time zone ("tomorrow" is read in it).
    #[arg(long, default_value = "Australia/Sydney")]
    pub timezone: String,
    /// The team's region: numbers without a country code are read in it (ISO 3166 code).
    #[arg(long, default_value = "AU")]
    pub region: String,
    /// Let webhook tools reach private and loopback addresses.
    #[arg(long)]
    pub allow_private_network: bool,
    /// `text` (default): the conversation as it goes, then the analysis. `json`: nothing while it
    /// goes, then one JSON document (transcript, path, outcome, end reason, analysis) for scripts
    /// and CI.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub fn load_script(path: &Path) -> anyhow::Result<Script> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let script = Script::from_yaml_or_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let problems = script.validate();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::bail!("{} is not a valid script:\n{}", path.display(), list.join("\n"));
    }
    Ok(script)
}

pub async fn run(opts: ChatArgs) -> anyhow::Result<()> {
    let timezone: chrono_tz::Tz = opts
        .timezone
        .parse()
        .map_err(|_| anyhow::anyhow!("`{}` is not an IANA time zone", opts.timezone))?;
    let region = crate::domain::phone::parse_region(&opts.region).map_err(anyhow::Error::msg)?;
    let script = Arc::new(load_script(&opts.script)?);
    let brain = brain::from_name(&opts.brain).map_err(anyhow::Error::msg)?;
    let sms = Arc::new(RecordingSms::default());
    let tools = Arc::new(Tools::new(opts.allow_private_network, sms.clone()));
    let context = CallContext {
        region,
        team_timezone: timezone,
        callee_timezone: timezone,
    };
    let vars = json!({
        "contact": {"first_name": opts.first_name, "phone_number": opts.phone, "email": opts.email},
        "call": {"type": "web", "simulated": true},
    });
    let json_output = opts.output == Output::Json;
    // Prompts and echoes are for a person; JSON output prints only the document.
    let interactive = std::io::stdin().is_terminal() && !json_output;
    let talk = !json_output;
    if interactive {
        println!(
            "Talking to \"{}\" with the {} brain. Type what you would say; /hangup or Ctrl-D hangs up.\n",
            script.name,
            brain.name()
        );
    }
    let script_name = script.name.clone();
    let mut conversation = Conversation::start(script, brain, tools, Arc::new(SystemClock), vars, context).await;
    let mut shown = 0;
    if talk {
        shown = show(&conversation, shown);
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !conversation.is_over() {
        if interactive {
            use std::io::Write;
            print!("you › ");
            let _ = std::io::stdout().flush();
        }
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(l) if l.trim() == "/hangup" || l.trim() == "/quit" => conversation.hang_up(),
                Some(l) => {
                    if talk && !interactive {
                        println!("you › {l}");
                    }
                    conversation.hear(&l).await;
                }
                None => conversation.hang_up(),
            },
            _ = tick.tick() => conversation.tick().await,
        }
        if talk {
            shown = show(&conversation, shown);
        }
    }
    let reason = conversation.end_reason().map(|r| r.as_str()).unwrap_or("unknown");
    if json_output {
        let analysis = conversation.analyse().await;
        let sms: Vec<_> = sms
            .0
            .lock()
            .expect("sms lock")
            .iter()
            .map(|(to, body)| json!({"to": to, "body": body}))
            .collect();
        let document = json!({
            "script": script_name,
            "transcript": conversation.transcript(),
            "path": conversation.path(),
            // How the main flow ended (`end_flow`); null when the call ended otherwise.
            "outcome": conversation.flow_outcome(),
            "end_reason": reason,
            "analysis": {
                "brain": analysis.brain,
                "summary": analysis.summary,
                "objectives": analysis.objectives,
                "data": analysis.structured_data,
                "success_evaluation": analysis.success_evaluation,
                "rating": analysis.rating,
            },
            "sms_recorded": sms,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!("\n— call ended: {reason} —\n");
    print_analysis(&conversation.analyse().await);
    for (to, body) in sms.0.lock().expect("sms lock").iter() {
        println!("(SMS recorded, not sent, to {to}: {body})");
    }
    Ok(())
}

/// Prints assistant turns not shown yet; returns how many turns are shown.
fn show(conversation: &Conversation, from: usize) -> usize {
    let turns = conversation.transcript();
    for t in &turns[from.min(turns.len())..] {
        if t.role == Role::Assistant {
            println!("assistant › {}", t.text);
        }
    }
    turns.len()
}

fn print_analysis(a: &Analysis) {
    println!("Analysis ({} brain)", a.brain);
    println!("  summary: {}", a.summary);
    let evaluation = serde_json::to_value(a.success_evaluation).unwrap_or_default();
    println!(
        "  success: {}, rating {}/5",
        evaluation.as_str().unwrap_or("?"),
        a.rating
    );
    for o in &a.objectives {
        let mark = if o.achieved { "✓" } else { "✗" };
        println!(
            "  {mark} {} — {}",
            o.description,
            o.evidence.as_deref().unwrap_or("no evidence")
        );
    }
    if !a.structured_data.is_empty() {
        println!("  data: {}", serde_json::Value::Object(a.structured_data.clone()));
    }
}
