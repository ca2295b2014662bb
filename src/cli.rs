//! The `voxd` command line: `serve`, `migrate`, and the operator's commands for teams, keys,
//! scripts, automations and numbers.

use std::{process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

use crate::{
    api::{self, AppState},
    config::{DbArgs, LogFormat, ServeArgs, Settings},
    domain::{
        call::{default_days, CallingWindow},
        new_id, now, phone,
    },
    store::{redact_url, teams::Team, Db, OnUnique},
};

#[derive(Parser)]
#[command(
    name = "voxd",
    version,
    about = "Self-hostable AI voice-calling platform (Voxworks-compatible API)"
)]
struct Cli {
    /// Log output [default: human]
    #[arg(long, env = "VOXD_LOG_FORMAT", global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

// Every command but `chat` opens the database, so each carries the database options (`DbArgs`,
// global below it); `chat` shows only what it uses.
#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (migrates the database first).
    Serve {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage teams.
    Team {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: TeamCommand,
    },
    /// Manage API keys.
    Key {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: KeyCommand,
    },
    /// Manage SIP trunks (where calls from a team's numbers ring out).
    Trunk {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: TrunkCommand,
    },
    /// Manage dashboard users (people who sign in to a team's web dashboard at `/`).
    User {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: UserCommand,
    },
    /// Manage scripts.
    Script {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: ScriptCommand,
    },
    /// Manage automations.
    Automation {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: AutomationCommand,
    },
    /// Manage a team's phone numbers (caller ids).
    Number {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: NumberCommand,
    },
    /// Manage a team's do-not-call list: numbers its outbound calls never ring.
    Dnc {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: DncCommand,
    },
    /// Simulate traffic through the `sim` carrier.
    Simulate {
        #[command(flatten)]
        db: DbArgs,
        #[command(subcommand)]
        cmd: SimulateCommand,
    },
    /// Talk to a script in the terminal, as the callee (no database needed).
    Chat(crate::chat::ChatArgs),
    /// Run labelled callee utterances through a brain and print its accuracy per category, with
    /// every miss (no database needed). Format: eval/README.md.
    Eval(EvalArgs),
    /// Run script test suites (YAML: a script, and cases of simulated callees with the path,
    /// outcome and data expected) and exit 1 when a case fails (no database needed).
    Test(TestArgs),
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// Suite files, or folders of them.
    #[arg(required = true)]
    paths: Vec<std::path::PathBuf>,
    /// rules (default), openai or hybrid (VOXD_OPENAI_* settings).
    #[arg(long, default_value = "rules")]
    brain: String,
    /// Also write the results as JUnit XML to this file.
    #[arg(long)]
    junit: Option<std::path::PathBuf>,
    /// Print each case's transcript and summary.
    #[arg(long, short)]
    verbose: bool,
}

async fn test_suites(args: TestArgs) -> anyhow::Result<()> {
    use crate::conversation::{
        context::CallContext,
        suite,
        tools::{RecordingSms, Tools},
    };
    let brain = crate::conversation::brain::from_name(&args.brain).map_err(anyhow::Error::msg)?;
    let tools = std::sync::Arc::new(Tools::new(false, std::sync::Arc::new(RecordingSms::default())));
    let mut files = Vec::new();
    for p in &args.paths {
        files.extend(crate::conversation::eval::files(p)?);
    }
    let mut suites = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let parsed: suite::SuiteFile =
            serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let script =
            crate::chat::load_script(&file.parent().unwrap_or(std::path::Path::new(".")).join(&parsed.script))?;
        let results = suite::run(
            std::sync::Arc::new(script),
            &parsed.run,
            brain.clone(),
            tools.clone(),
            CallContext::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        println!("{}", file.display());
        for r in &results {
            println!(
                "  {} {} ({})",
                if r.passed { "ok  " } else { "FAIL" },
                r.name,
                r.path.join(" → ")
            );
            for f in &r.failures {
                println!("       {f}");
            }
            if args.verbose {
                for t in &r.transcript {
                    let who = match t.role {
                        crate::conversation::transcript::Role::Assistant => "assistant",
                        crate::conversation::transcript::Role::User => "callee   ",
                    };
                    println!("       {who} › {}", t.text);
                }
                println!("       summary: {}", r.summary);
            }
        }
        suites.push((file.display().to_string(), results));
    }
    let total: usize = suites.iter().map(|(_, r)| r.len()).sum();
    let failed: usize = suites.iter().map(|(_, r)| r.iter().filter(|c| !c.passed).count()).sum();
    if let Some(path) = &args.junit {
        std::fs::write(path, suite::junit(&suites)).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    println!("{} cases, {} passed, {failed} failed", total, total - failed);
    if failed > 0 {
        anyhow::bail!("{failed} of {total} script test cases failed");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Eval files, or folders of them.
    #[arg(default_value = "eval/understanding")]
    paths: Vec<std::path::PathBuf>,
    /// rules (default), openai or hybrid (VOXD_OPENAI_* settings).
    #[arg(long, default_value = "rules")]
    brain: String,
    /// Fail (exit 1) when overall accuracy is below this share, e.g. 0.9.
    #[arg(long)]
    min_accuracy: Option<f64>,
    /// `text` (default) or `json` (every case with what the brain made of it).
    #[arg(long, value_enum, default_value_t = crate::chat::Output::Text)]
    output: crate::chat::Output,
}

async fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let brain = crate::conversation::brain::from_name(&args.brain).map_err(anyhow::Error::msg)?;
    let mut files = Vec::new();
    for p in &args.paths {
        files.extend(crate::conversation::eval::files(p)?);
    }
    if files.is_empty() {
        anyhow::bail!(
            "no eval files in {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let report = crate::conversation::eval::run(&files, &*brain).await?;
    match args.output {
        crate::chat::Output::Text => print!("{}", report.render()),
        crate::chat::Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    let accuracy = report.overall().accuracy();
    if let Some(min) = args.min_accuracy.filter(|min| accuracy < *min) {
        anyhow::bail!("accuracy {:.1}% is below {:.1}%", 100.0 * accuracy, 100.0 * min);
    }
    Ok(())
}

impl Command {
    fn db_args(&self) -> &DbArgs {
        match self {
            Command::Serve { db, .. }
            | Command::Migrate { db }
            | Command::Team { db, .. }
            | Command::Key { db, .. }
            | Command::User { db, .. }
            | Command::Trunk { db, .. }
            | Command::Script { db, .. }
            | Command::Automation { db, .. }
            | Command::Number { db, .. }
            | Command::Dnc { db, .. }
            | Command::Simulate { db, .. } => db,
            Command::Chat(_) | Command::Eval(_) | Command::Test(_) => {
                unreachable!("chat, eval and test open no database")
            }
        }
    }
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// Ring one of a team's numbers from a caller: its inbound script answers, a simulated caller
    /// talks, and the call is recorded as an `inbound` call. Prints the call id, then the result.
    Inbound {
        /// The team number called (it needs an inbound script: `voxd number add --inbound-script`
        /// or `voxd number update --inbound-script`).
        #[arg(long)]
        to: String,
        /// The caller's number.
        #[arg(long)]
        from: String,
        /// cooperative (default), unsure, silent, hangs_up or interrupts.
        #[arg(long, default_value = "cooperative")]
        persona: String,
    },
}

/// A team limit as given on the command line: a number, or back to the server's default.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    ServerDefault,
    Value(i32),
}

fn parse_limit(raw: &str) -> Result<Limit, String> {
    if raw.eq_ignore_ascii_case("default") {
        return Ok(Limit::ServerDefault);
    }
    match raw.parse::<u32>().ok().and_then(|n| i32::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(Limit::Value(n)),
        _ => Err(format!("`{raw}` is not a positive whole number or `default`")),
    }
}

/// A retention: days, or kept for good.
#[derive(Debug, Clone, Copy)]
struct Days(Option<i32>);

fn parse_days(raw: &str) -> Result<Days, String> {
    if raw.eq_ignore_ascii_case("forever") {
        return Ok(Days(None));
    }
    match raw.parse::<u32>().ok().and_then(|n| i32::try_from(n).ok()) {
        Some(n) if (1..=36_500).contains(&n) => Ok(Days(Some(n))),
        _ => Err(format!("`{raw}` is not a number of days (1 to 36500) or `forever`")),
    }
}

/// A team, key, script or number that is not there. The message gets the database's name, so an
/// operator who ran the command against the wrong database sees which one it was.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Missing(String);

#[derive(Subcommand)]
enum TrunkCommand {
    /// Add a SIP trunk to a team. The password (for digest challenges) comes from standard input
    /// with `--password-stdin`, or `VOXD_TRUNK_PASSWORD`; it is stored sealed and never shown.
    Add {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// A name for the trunk (unique in the team).
        name: String,
        /// Where it is: `sip:HOST[:PORT]` (port 5060 when left out).
        #[arg(long)]
        uri: String,
        /// Only `udp` so far.
        #[arg(long, default_value = "udp")]
        transport: String,
        /// The user name for digest authentication.
        #[arg(long)]
        username: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a team's trunks (never their passwords).
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Remove a trunk (refused while numbers ring through it).
    Remove {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The trunk's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user to a team. The password comes from standard input (`--password-stdin`) or
    /// `VOXD_USER_PASSWORD`; with neither, one is generated and printed once.
    Add {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The email the user signs in with (unique across teams).
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a team's users.
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Set a user's password (from standard input or `VOXD_USER_PASSWORD`, else generated); ends
    /// their sessions.
    SetPassword {
        /// The user's email.
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user; their sessions end.
    Remove {
        /// The user's email.
        email: String,
    },
}

#[derive(Subcommand)]
enum DncCommand {
    /// Put a number on the list (any format; stored in E.164). Listed already: kept as it was.
    Add {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format (read in the team's region).
        number: String,
        /// Why (a note for people).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the numbers on a team's list, with when and why each was added.
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Take a number off the list.
    Remove {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format.
        number: String,
    },
    /// Import numbers from a CSV file with a `phone_number` column (and optionally `reason`).
    Import {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The CSV file (`-` for standard input).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum NumberCommand {
    /// Add a caller id to a team (any format; stored in E.164).
    Add {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format (read in the team's region).
        number: String,
        /// The inbound script that answers calls to this number (its id).
        #[arg(long)]
        inbound_script: Option<Uuid>,
        /// The SIP trunk calls from this number ring through (`voxd trunk add`); without one
        /// they run on the simulated network.
        #[arg(long, conflicts_with = "twilio")]
        trunk: Option<String>,
        /// Calls from and to this number go through the team's Twilio account (`PUT
        /// /api/v1/twilio`).
        #[arg(long)]
        twilio: bool,
    },
    /// Put a number on a SIP trunk, or (`--no-trunk`) back on the simulated network.
    SetTrunk {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format.
        number: String,
        /// The trunk's name.
        #[arg(required_unless_present = "no_trunk")]
        trunk: Option<String>,
        /// Take the number off its trunk.
        #[arg(long, conflicts_with = "trunk")]
        no_trunk: bool,
    },
    /// List a team's numbers with the script answering each.
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Change the inbound script that answers a number, or stop answering it.
    Update {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format.
        number: String,
        /// The inbound script that answers calls to this number from now on (its id).
        #[arg(long, required_unless_present = "no_inbound_script")]
        inbound_script: Option<Uuid>,
        /// Answer calls to this number with no script (they are not answered).
        #[arg(long, conflicts_with = "inbound_script")]
        no_inbound_script: bool,
    },
    /// Remove a number (refused while scheduled or running calls ring from it).
    Remove {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The number, in any common format.
        number: String,
    },
}

#[derive(Subcommand)]
enum ScriptCommand {
    /// Validate a script file (YAML or JSON), store it for a team and print its id.
    Import {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The script file, YAML or JSON.
        file: std::path::PathBuf,
    },
    /// List a team's scripts.
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Print a script as YAML (the form `import` reads).
    Show {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The script's id.
        id: Uuid,
        /// An earlier version instead of the current one.
        #[arg(long)]
        version: Option<i32>,
    },
    /// Store a new version of a script from a file. Calls already scheduled keep the version they
    /// were created with unless --move-scheduled-calls.
    Update {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The script's id.
        id: Uuid,
        /// The script file, YAML or JSON.
        file: std::path::PathBuf,
        /// Move scheduled and queued calls to the new version.
        #[arg(long)]
        move_scheduled_calls: bool,
    },
    /// List a script's versions.
    Versions {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The script's id.
        id: Uuid,
    },
    /// Delete a script (refused once calls were made with it).
    Delete {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The script's id.
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum AutomationCommand {
    /// Validate an automation file (YAML or JSON), store it for a team and print its id, and for a
    /// webhook trigger its hook path (and secret, when signed): they are shown only now.
    Import {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The automation file, YAML or JSON.
        file: std::path::PathBuf,
    },
    /// List a team's automations.
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Print an automation's definition as YAML, with whether it is enabled.
    Show {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// The automation's id.
        id: Uuid,
    },
}

#[derive(Subcommand)]
enum TeamCommand {
    /// Create a team and print its id.
    Create {
        /// The team's name (unique; commands take it or the id).
        name: String,
        /// Default region for reading phone numbers (ISO 3166 code).
        #[arg(long, default_value = "AU")]
        region: String,
        /// IANA time zone.
        #[arg(long, default_value = "Australia/Sydney")]
        timezone: String,
        /// Override of the server's default API requests per second per key.
        #[arg(long)]
        requests_per_second: Option<u32>,
        /// Override of the server's default concurrent-call limit.
        #[arg(long)]
        max_concurrent_calls: Option<u32>,
    },
    /// List teams.
    List,
    /// Show a team's settings, its default calling window included.
    Show {
        /// Team name or id.
        team: String,
    },
    /// Set the team's default calling window: the hours calls may ring, in each callee's time
    /// zone, for calls created without a `calling_window` of their own.
    SetCallingWindow {
        /// Team name or id.
        team: String,
        /// Local opening time, HH:MM.
        #[arg(long, required_unless_present = "none")]
        start: Option<String>,
        /// Local closing time, HH:MM (exclusive).
        #[arg(long, required_unless_present = "none")]
        end: Option<String>,
        /// Days calls may ring, comma-separated (default mon,tue,wed,thu,fri,sat).
        #[arg(long, value_delimiter = ',')]
        days: Vec<String>,
        /// Remove the default window: calls without their own ring at any hour.
        #[arg(long, conflicts_with_all = ["start", "end", "days"])]
        none: bool,
    },
    /// Turn recording of the team's live calls on or off (a script can also turn it off for its
    /// own calls with `settings.recording: false`).
    SetRecording {
        /// Team name or id.
        team: String,
        /// `on` (the default for a new team) or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Keep recordings and transcripts for a limited time: days after a call ends, or `forever`.
    /// What is older is deleted by `serve`'s hourly sweep. A kind not given stays as it is.
    SetRetention {
        /// Team name or id.
        team: String,
        /// Days recordings are kept, or `forever`.
        #[arg(long, value_parser = parse_days)]
        recordings: Option<Days>,
        /// Days transcripts are kept, or `forever` (the call's analysis stays).
        #[arg(long, value_parser = parse_days)]
        transcripts: Option<Days>,
    },
    /// Set a team's limits; a limit not given stays as it is.
    SetLimits {
        /// Team name or id.
        team: String,
        /// API requests per second shared by the team's keys, or `default` for the server's.
        #[arg(long, value_parser = parse_limit)]
        requests_per_second: Option<Limit>,
        /// Calls the team may have under way at once, or `default` for the server's.
        #[arg(long, value_parser = parse_limit)]
        max_concurrent_calls: Option<Limit>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key; it is printed once, alone on the last line.
    Create {
        /// Team name or id.
        #[arg(long)]
        team: String,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
    /// List a team's keys (never the keys themselves).
    List {
        /// Team name or id.
        #[arg(long)]
        team: String,
    },
    /// Revoke a key by id; requests with it get 401 from then on.
    Revoke {
        /// The key's id (from `voxd key list`).
        id: Uuid,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Chat(args) => {
            init_logging(cli.log_format.unwrap_or_default(), false);
            return crate::chat::run(args).await;
        }
        Command::Eval(args) => {
            init_logging(cli.log_format.unwrap_or_default(), false);
            return eval(args).await;
        }
        Command::Test(args) => {
            init_logging(cli.log_format.unwrap_or_default(), false);
            return test_suites(args).await;
        }
        _ => {}
    }
    let serve_args = match &cli.command {
        Command::Serve { args, .. } => Some(args),
        _ => None,
    };
    let settings = Settings::resolve(
        cli.command.db_args(),
        cli.log_format,
        serve_args.unwrap_or(&ServeArgs::default()),
    )?;
    init_logging(settings.log_format, serve_args.is_some());
    let db = Db::connect(&settings.db)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact_url(&settings.db.url)))?;
    db.migrate().await?;
    let database = redact_url(&settings.db.url);
    let result = match cli.command {
        Command::Serve { .. } => serve(db.clone(), settings).await,
        Command::Migrate { .. } => {
            println!("migrations applied to {}", redact_url(&settings.db.url));
            Ok(())
        }
        Command::Team { cmd, .. } => team(&db, cmd).await,
        Command::Key { cmd, .. } => key(&db, cmd).await,
        Command::User { cmd, .. } => user(&db, cmd).await,
        Command::Trunk { cmd, .. } => trunk(&db, cmd).await,
        Command::Script { cmd, .. } => script(&db, cmd).await,
        Command::Automation { cmd, .. } => automation(&db, cmd).await,
        Command::Number { cmd, .. } => number(&db, cmd).await,
        Command::Dnc { cmd, .. } => dnc(&db, cmd).await,
        Command::Simulate {
            cmd: SimulateCommand::Inbound { to, from, persona },
            ..
        } => simulate_inbound(&db, &settings, &to, &from, &persona).await,
        Command::Chat(_) | Command::Eval(_) | Command::Test(_) => unreachable!("handled before opening the database"),
    };
    db.close().await;
    result.map_err(|e| match e.downcast_ref::<Missing>() {
        Some(m) => anyhow::anyhow!("{m} in the database {database}"),
        None => e,
    })
}

fn init_logging(format: LogFormat, serving: bool) {
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a terminal: a log written to a file or a pipe stays plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(terminal)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(db: Db, settings: Settings) -> anyhow::Result<()> {
    // The phone-number metadata is parsed on first use (about a second in a debug build): parse it
    // now rather than in the first request that reads a number.
    let _ = phone::normalize("warm-up", "+61291234567", phonenumber::country::Id::AU);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    tracing::info!(
        listen = %settings.listen,
        database = %redact_url(&settings.db.url),
        backend = db.backend(),
        "voxd serving"
    );
    let expiry = tokio::spawn(housekeeping(db.clone(), settings.voice.recordings.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engines = settings.voice.enabled.then(|| speech_engines(&settings));
    let (carrier, sip, twilio) = carrier(&db, &settings, engines.clone()).await?;
    let calls = dispatcher(db.clone(), &settings, carrier);
    twilio.set_dispatcher(calls.clone());
    // Calls to the teams' numbers over their trunks.
    if let (Some(endpoint), Some(engines)) = (sip, engines.clone()) {
        crate::voice::trunk_carrier::InboundCalls {
            db: db.clone(),
            endpoint,
            engines,
            settings: trunk_settings(&settings),
            dispatcher: calls.clone(),
        }
        .start();
    }
    let dispatching = settings.dispatcher_enabled.then(|| {
        tokio::spawn(calls.clone().run(async {
            let _ = stop_rx.await;
        }))
    });
    // Campaigns are fed where calls are dispatched.
    let feeding = settings
        .dispatcher_enabled
        .then(|| tokio::spawn(feed_campaigns(db.clone())));
    let mut api_settings = settings.api.clone();
    let voice = if let Some(engines) = engines {
        Some(voice_gateway(&db, &settings, &mut api_settings, calls, engines).await?)
    } else {
        tracing::info!("live voice is off (voice_disabled): web calls need an external gateway");
        None
    };
    let (auto_stop_tx, auto_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let automating = if settings.automations_enabled {
        let runner = automation_runner(db.clone(), &settings)?;
        Some(tokio::spawn(runner.run(async {
            let _ = auto_stop_rx.await;
        })))
    } else {
        None
    };
    let mut state = AppState::new(db, api_settings).with_twilio(twilio);
    if let Some(gateway) = voice {
        state = state.with_voice(gateway);
    }
    let app = api::router(state);
    // The connection's address keys the limit on failed authentications.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    // Calls in flight finish their current pass; a call cut short is recovered by its lease.
    let _ = stop_tx.send(());
    let _ = auto_stop_tx.send(());
    if let Some(d) = dispatching {
        let _ = d.await;
    }
    if let Some(a) = automating {
        let _ = a.await;
    }
    expiry.abort();
    if let Some(f) = feeding {
        f.abort();
    }
    tracing::info!("stopped: in-flight requests finished");
    Ok(())
}

/// The speech engines the settings choose, saying which and why.
fn speech_engines(settings: &Settings) -> crate::voice::speech::Engines {
    use crate::voice::speech::{EngineSource, Engines};
    let v = &settings.voice;
    let key = std::env::var("VOXD_SPEECH_API_KEY").ok();
    let source = EngineSource {
        speech_dir: v.speech_dir.clone(),
        openai: v.speech_base_url.clone().map(|u| (u, key)),
    };
    let engines = Engines::choose(&v.stt, &v.tts, source);
    match (&engines.stt, &engines.stt_missing) {
        (Some(stt), _) => tracing::info!(engine = stt.name(), "speech-to-text ready"),
        (None, why) => tracing::warn!(
            reason = why.as_deref().unwrap_or_default(),
            "speech-to-text disabled: web calls will be refused with this reason"
        ),
    }
    match (&engines.tts, &engines.tts_missing) {
        (Some(tts), _) => tracing::info!(engine = tts.name(), "text-to-speech ready"),
        (None, why) => tracing::warn!(
            reason = why.as_deref().unwrap_or_default(),
            "text-to-speech disabled: web calls will be refused with this reason"
        ),
    }
    engines
}

/// The carrier of `serve`: calls from numbers on a SIP trunk go over SIP (when this process runs
/// live voice and its SIP endpoint), from Twilio numbers through Twilio, others on the simulated
/// network.
async fn carrier(
    db: &Db,
    settings: &Settings,
    engines: Option<crate::voice::speech::Engines>,
) -> anyhow::Result<(
    Arc<dyn crate::carrier::Carrier>,
    Option<Arc<crate::voice::trunk::Endpoint>>,
    Arc<crate::voice::twilio::Twilio>,
)> {
    use crate::voice::{trunk, trunk_carrier, twilio};
    let sim = Arc::new(crate::carrier::sim::SimCarrier {
        delays: settings.sim_delays,
    });
    let v = &settings.voice;
    let twilio = twilio::Twilio::new(
        db.clone(),
        engines.clone(),
        twilio::TwilioSettings {
            api_base: v.twilio_api_base.clone(),
            public_url: v.public_url.clone(),
            media_timeout: v.media_timeout,
            ring_timeout: v.ring_timeout,
            recordings: v.recordings.clone(),
        },
    );
    let via_twilio = Arc::new(twilio::TwilioCarrier {
        twilio: twilio.clone(),
        fallback: sim,
    });
    let endpoint = match (&engines, settings.voice.sip_listen) {
        (Some(_), Some(address)) => match trunk::Endpoint::bind(address).await {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(%address, error = %e, "SIP endpoint not started: calls over trunks will fail saying so");
                None
            }
        },
        _ => None,
    };
    let seal = crate::trunks::seal_key(db).await?;
    let carrier = Arc::new(trunk_carrier::TrunkCarrier {
        db: db.clone(),
        endpoint: endpoint.clone(),
        engines,
        seal: Arc::new(seal),
        settings: trunk_settings(settings),
        fallback: via_twilio,
    });
    Ok((carrier, endpoint, twilio))
}

fn trunk_settings(settings: &Settings) -> crate::voice::trunk_carrier::TrunkSettings {
    crate::voice::trunk_carrier::TrunkSettings {
        media: settings.voice.media.clone(),
        media_timeout: settings.voice.media_timeout,
        ring_timeout: settings.voice.ring_timeout,
        recordings: settings.voice.recordings.clone(),
        public_url: settings.voice.public_url.clone(),
        machine_detection: settings
            .voice
            .machine_detection
            .then(crate::voice::amd::Settings::default),
        probe: None,
    }
}

/// The web-call gateway of `serve`, and the web-call secret (configured, else made on first start
/// and kept in the database).
async fn voice_gateway(
    db: &Db,
    settings: &Settings,
    api: &mut api::ApiSettings,
    calls: crate::dispatcher::Dispatcher,
    engines: crate::voice::speech::Engines,
) -> anyhow::Result<Arc<crate::voice::gateway::Gateway>> {
    use crate::voice::gateway;
    let v = &settings.voice;
    if api.web_calls.secret.is_empty() {
        api.web_calls.secret = db.server_secret("web_call", chrono::Utc::now()).await?;
    }
    tracing::info!(
        sip = %format!("{}/sip", v.public_url.replace("http", "ws")),
        media = %v.media.bind,
        ports = %format!("{}-{}", v.media.ports.start(), v.media.ports.end()),
        recordings = %v.recordings.as_ref().map_or("off".into(), |p| p.display().to_string()),
        "web-call gateway ready"
    );
    Ok(Arc::new(gateway::Gateway::new(
        db.clone(),
        calls,
        gateway::GatewaySettings {
            domain: api.web_calls.sip_domain.clone().unwrap_or_else(|| "voxd".into()),
            secret: api.web_calls.secret.clone(),
            media: v.media.clone(),
            recordings: v.recordings.clone(),
            public_url: v.public_url.clone(),
            media_timeout: v.media_timeout,
        },
        engines,
    )))
}

/// The dispatcher of `serve`: the carrier, and the rules brain.
fn dispatcher(db: Db, settings: &Settings, carrier: Arc<dyn crate::carrier::Carrier>) -> crate::dispatcher::Dispatcher {
    use crate::{
        clock::SystemClock,
        conversation::{brain::rules::RulesBrain, tools},
    };
    let sms = Arc::new(tools::RecordingSms::default());
    let tools = tools::Tools::new(settings.allow_private_network, sms);
    crate::dispatcher::Dispatcher::new(
        db,
        Arc::new(SystemClock),
        carrier,
        Arc::new(RulesBrain),
        Arc::new(tools),
        crate::dispatcher::DispatcherSettings {
            max_concurrent_calls: i64::from(settings.max_concurrent_calls),
            lease: settings.dispatch_lease,
            calls_per_second_per_number: settings.calls_per_second_per_number,
            ..Default::default()
        },
    )
}

/// The automation worker of `serve`: email through the configured SMTP relay; no SMS channel yet.
fn automation_runner(db: Db, settings: &Settings) -> anyhow::Result<crate::automations::Runner> {
    use crate::automations::notify::{Channels, Smtp};
    let smtp = match &settings.smtp_url {
        Some(url) => Some(Smtp::new(url, &settings.smtp_from).map_err(anyhow::Error::msg)?),
        None => None,
    };
    Ok(crate::automations::Runner::new(
        db,
        Arc::new(crate::clock::SystemClock),
        Arc::new(Channels { smtp, sms: None }),
        settings.automations.clone(),
    ))
}

/// Every two seconds: campaigns get their next calls where they have room.
async fn feed_campaigns(db: Db) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        if let Err(e) = crate::campaigns::feed(&db, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "campaign pass failed; trying again shortly");
        }
    }
}

/// Hourly: replays and hook receipts past their day, expired dashboard sessions, and what teams
/// keep past their retention.
async fn housekeeping(db: Db, recordings: Option<std::path::PathBuf>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = crate::retention::sweep(&db, recordings.as_deref(), chrono::Utc::now()).await {
            tracing::warn!(error = %e, "retention sweep failed; it runs again in an hour");
        }
        match db.expire_idempotency_keys(chrono::Utc::now().timestamp_millis()).await {
            Ok(n) if n > 0 => tracing::info!(expired = n, "idempotency keys expired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not expire idempotency keys"),
        }
        match db.expire_hook_receipts(chrono::Utc::now().timestamp_millis()).await {
            Ok(n) if n > 0 => tracing::info!(expired = n, "hook idempotency keys expired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not expire hook idempotency keys"),
        }
        match db.purge_sessions(chrono::Utc::now()).await {
            Ok(n) if n > 0 => tracing::info!(expired = n, "dashboard sessions expired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not expire dashboard sessions"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

fn to_limit(n: Option<u32>) -> anyhow::Result<Option<i32>> {
    n.map(|n| i32::try_from(n).map_err(|_| anyhow::anyhow!("limit {n} is too large")))
        .transpose()
}

async fn find_team(db: &Db, name_or_id: &str) -> anyhow::Result<Team> {
    db.find_team(name_or_id)
        .await?
        .ok_or_else(|| Missing(format!("no team named or with id `{name_or_id}`")).into())
}

async fn team(db: &Db, cmd: TeamCommand) -> anyhow::Result<()> {
    match cmd {
        TeamCommand::Create {
            name,
            region,
            timezone,
            requests_per_second,
            max_concurrent_calls,
        } => {
            let name = name.trim().to_owned();
            anyhow::ensure!(
                !name.is_empty() && name.len() <= 255,
                "team name must be 1 to 255 characters"
            );
            anyhow::ensure!(Uuid::parse_str(&name).is_err(), "a team name cannot look like an id");
            phone::parse_region(&region).map_err(anyhow::Error::msg)?;
            timezone
                .parse::<chrono_tz::Tz>()
                .map_err(|_| anyhow::anyhow!("`{timezone}` is not an IANA time zone"))?;
            let team = Team {
                id: new_id(),
                name,
                region: region.to_ascii_uppercase(),
                timezone,
                requests_per_second: to_limit(requests_per_second)?,
                max_concurrent_calls: to_limit(max_concurrent_calls)?,
                created_at: now(),
                recordings: true,
            };
            db.create_team(&team)
                .await
                .on_unique(|| anyhow::anyhow!("a team named `{}` already exists", team.name))?;
            println!("{}", team.id);
        }
        TeamCommand::List => {
            println!(
                "{:<36}  {:<6}  {:<20}  {:>8}  NAME",
                "ID", "REGION", "TIMEZONE", "REQ/S"
            );
            for t in db.list_teams().await? {
                let rps = t.requests_per_second.map_or("default".to_owned(), |n| n.to_string());
                println!(
                    "{:<36}  {:<6}  {:<20}  {:>8}  {}",
                    t.id, t.region, t.timezone, rps, t.name
                );
            }
        }
        TeamCommand::Show { team } => {
            let team = find_team(db, &team).await?;
            let window = db.team_calling_window(team.id).await?;
            let limit = |n: Option<i32>| n.map_or("server default".to_owned(), |n| n.to_string());
            println!("id: {}", team.id);
            println!("name: {}", team.name);
            println!("region: {}", team.region);
            println!("timezone: {}", team.timezone);
            println!("requests_per_second: {}", limit(team.requests_per_second));
            println!("max_concurrent_calls: {}", limit(team.max_concurrent_calls));
            match window {
                Some(w) => println!("calling_window: {} {}-{}", w.days.join(","), w.start, w.end),
                None => println!("calling_window: none (any time)"),
            }
            println!("recordings: {}", if team.recordings { "on" } else { "off" });
            let r = db.team_retention(team.id).await?.unwrap_or_default();
            let days = |d: Option<i32>| d.map_or("forever".to_owned(), |d| format!("{d} days"));
            println!("recordings kept: {}", days(r.recording_retention_days));
            println!("transcripts kept: {}", days(r.transcript_retention_days));
        }
        TeamCommand::SetRetention {
            team,
            recordings,
            transcripts,
        } => {
            let team = find_team(db, &team).await?;
            let mut r = db.team_retention(team.id).await?.unwrap_or_default();
            if let Some(Days(d)) = recordings {
                r.recording_retention_days = d;
            }
            if let Some(Days(d)) = transcripts {
                r.transcript_retention_days = d;
            }
            db.set_team_retention(team.id, r).await?;
            let days = |d: Option<i32>| d.map_or("forever".to_owned(), |d| format!("{d} days"));
            println!(
                "team {} keeps recordings {} and transcripts {}",
                team.name,
                days(r.recording_retention_days),
                days(r.transcript_retention_days)
            );
        }
        TeamCommand::SetRecording { team, state } => {
            let team = find_team(db, &team).await?;
            db.set_team_recordings(team.id, state == "on").await?;
            println!("recording of team {}'s calls: {state}", team.name);
        }
        TeamCommand::SetCallingWindow {
            team,
            start,
            end,
            days,
            none,
        } => {
            let team = find_team(db, &team).await?;
            let window = match (none, start, end) {
                (true, _, _) => None,
                (false, Some(start), Some(end)) => {
                    let w = CallingWindow {
                        start,
                        end,
                        days: match days.is_empty() {
                            true => default_days(),
                            false => days.iter().map(|d| d.trim().to_ascii_lowercase()).collect(),
                        },
                    };
                    w.check().map_err(|e| anyhow::anyhow!("calling window: {e}"))?;
                    Some(w)
                }
                _ => anyhow::bail!("give --start and --end, or --none"),
            };
            db.set_team_calling_window(team.id, window.as_ref()).await?;
            match window {
                Some(w) => println!(
                    "default calling window of team {}: {} {}-{}",
                    team.name,
                    w.days.join(","),
                    w.start,
                    w.end
                ),
                None => println!("team {} has no default calling window", team.name),
            }
        }
        TeamCommand::SetLimits {
            team,
            requests_per_second,
            max_concurrent_calls,
        } => {
            anyhow::ensure!(
                requests_per_second.is_some() || max_concurrent_calls.is_some(),
                "give --requests-per-second and/or --max-concurrent-calls (a number, or `default`)"
            );
            let team = find_team(db, &team).await?;
            let pick = |given: Option<Limit>, now: Option<i32>| match given {
                None => now,
                Some(Limit::ServerDefault) => None,
                Some(Limit::Value(n)) => Some(n),
            };
            let rps = pick(requests_per_second, team.requests_per_second);
            let calls = pick(max_concurrent_calls, team.max_concurrent_calls);
            db.set_team_limits(team.id, rps, calls).await?;
            let shown = |n: Option<i32>| n.map_or("server default".to_owned(), |n| n.to_string());
            println!(
                "limits of team {}: requests_per_second {}, max_concurrent_calls {}",
                team.name,
                shown(rps),
                shown(calls)
            );
        }
    }
    Ok(())
}

async fn key(db: &Db, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create { team, name } => {
            let team = find_team(db, &team).await?;
            let (key, secret) = db.issue_key(team.id, name.as_deref()).await?;
            println!(
                "Created API key {} for team {}. It is shown only this once:",
                key.id, team.name
            );
            println!("{secret}");
        }
        KeyCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!(
                "{:<36}  {:<12}  {:<20}  {:<20}  {:<8}  LABEL",
                "ID", "PREFIX", "CREATED", "LAST USED", "STATUS"
            );
            let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
            for k in db.list_keys(team.id).await? {
                println!(
                    "{:<36}  {:<12}  {:<20}  {:<20}  {:<8}  {}",
                    k.id,
                    k.prefix,
                    fmt(k.created_at),
                    k.last_used_at.map_or("never".to_owned(), fmt),
                    if k.revoked_at.is_some() { "revoked" } else { "active" },
                    k.name.unwrap_or_default()
                );
            }
        }
        KeyCommand::Revoke { id } => {
            if !db.revoke_key(id, now()).await? {
                return Err(Missing(format!("no active key with id {id}")).into());
            }
            println!("key {id} revoked");
        }
    }
    Ok(())
}

async fn find_trunk(db: &Db, team: &Team, name: &str) -> anyhow::Result<crate::store::trunks::Trunk> {
    db.trunk_by_name(team.id, name)
        .await?
        .ok_or_else(|| Missing(format!("team {} has no trunk named {name}", team.name)).into())
}

async fn trunk(db: &Db, cmd: TrunkCommand) -> anyhow::Result<()> {
    use crate::trunks;
    match cmd {
        TrunkCommand::Add {
            team,
            name,
            uri,
            transport,
            username,
            password_stdin,
        } => {
            let team = find_team(db, &team).await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                std::env::var("VOXD_TRUNK_PASSWORD").ok()
            };
            let new = trunks::NewTrunk {
                name,
                uri,
                transport: Some(transport),
                username,
                password,
            };
            let trunk = trunks::add(db, team.id, new).await.map_err(|e| match e {
                trunks::TrunkError::Invalid(f) => anyhow::anyhow!("{}: {}", f.field, f.reason),
                trunks::TrunkError::Taken(name) => {
                    anyhow::anyhow!("team {} has a trunk named {name} already", team.name)
                }
                other => other.into(),
            })?;
            let name = &trunk.name;
            println!(
                "Added trunk {name} (sip:{}:{}) to team {}.",
                trunk.host, trunk.port, team.name
            );
        }
        TrunkCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!(
                "{:<20}  {:<32}  {:<6}  {:<16}  PASSWORD",
                "NAME", "ADDRESS", "VIA", "USERNAME"
            );
            for t in db.list_trunks(team.id).await? {
                println!(
                    "{:<20}  {:<32}  {:<6}  {:<16}  {}",
                    t.name,
                    format!("sip:{}:{}", t.host, t.port),
                    t.transport,
                    t.username.as_deref().unwrap_or("-"),
                    if t.password.is_some() { "set" } else { "-" }
                );
            }
        }
        TrunkCommand::Remove { team, name } => {
            let team = find_team(db, &team).await?;
            let t = find_trunk(db, &team, &name).await?;
            trunks::remove(db, team.id, t.id).await.map_err(|e| match e {
                trunks::TrunkError::InUse(n) => {
                    anyhow::anyhow!("{n} number(s) ring through trunk {name}: move them first (voxd number set-trunk)")
                }
                other => other.into(),
            })?;
            println!("trunk {name} removed");
        }
    }
    Ok(())
}

/// The password for `user add` / `user set-password`, and whether it was generated (to print).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    use crate::domain::password;
    let given = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        std::env::var("VOXD_USER_PASSWORD").ok().filter(|p| !p.is_empty())
    };
    match given {
        Some(p) => {
            password::check_new(&p).map_err(|why| anyhow::anyhow!("password refused: {why}"))?;
            Ok((p, false))
        }
        None => Ok((password::generate(), true)),
    }
}

async fn user(db: &Db, cmd: UserCommand) -> anyhow::Result<()> {
    use crate::{domain::password, store::users::User};
    let normalise = |e: &str| e.trim().to_lowercase();
    match cmd {
        UserCommand::Add {
            team,
            email,
            password_stdin,
        } => {
            let team = find_team(db, &team).await?;
            let email = normalise(&email);
            if !email_address::EmailAddress::is_valid(&email) {
                anyhow::bail!("`{email}` is not an email address");
            }
            let (clear, generated) = new_password(password_stdin)?;
            let shown = clear.clone();
            let user = User {
                id: new_id(),
                team_id: team.id,
                email: email.clone(),
                // Argon2 is deliberately slow: off the async workers.
                password_hash: tokio::task::spawn_blocking(move || password::hash(&clear)).await?,
                created_at: now(),
                last_signed_in_at: None,
            };
            match db.create_user(&user).await {
                Err(crate::store::StoreError::Conflict(_)) => anyhow::bail!("a user with email {email} exists already"),
                other => other?,
            }
            println!("Added dashboard user {email} to team {}.", team.name);
            if generated {
                println!("Their password, shown only this once:");
                println!("{shown}");
            }
        }
        UserCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!("{:<40}  {:<20}  LAST SIGN-IN", "EMAIL", "CREATED");
            let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%SZ").to_string();
            for u in db.list_users(team.id).await? {
                println!(
                    "{:<40}  {:<20}  {}",
                    u.email,
                    fmt(u.created_at),
                    u.last_signed_in_at.map_or("never".to_owned(), fmt)
                );
            }
        }
        UserCommand::SetPassword { email, password_stdin } => {
            let email = normalise(&email);
            let user = db
                .user_by_email(&email)
                .await?
                .ok_or_else(|| Missing(format!("no dashboard user with email {email}")))?;
            let (clear, generated) = new_password(password_stdin)?;
            let shown = clear.clone();
            let hash = tokio::task::spawn_blocking(move || password::hash(&clear)).await?;
            db.set_user_password(user.id, &hash).await?;
            println!("Password of {email} set; their sessions have ended.");
            if generated {
                println!("The new password, shown only this once:");
                println!("{shown}");
            }
        }
        UserCommand::Remove { email } => {
            let email = normalise(&email);
            if !db.remove_user(&email).await? {
                return Err(Missing(format!("no dashboard user with email {email}")).into());
            }
            println!("dashboard user {email} removed");
        }
    }
    Ok(())
}

/// Every row of a paged listing, page by page (the store's listings are all paged).
async fn all_pages<T, F, Fut>(mut fetch: F, id: impl Fn(&T) -> Uuid) -> anyhow::Result<Vec<T>>
where
    F: FnMut(crate::store::Seek) -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<Vec<T>>>,
{
    let mut page = crate::store::Seek::oldest_first(200);
    let mut all = Vec::new();
    loop {
        let rows = fetch(page).await?;
        let full = rows.len() as i64 == page.limit;
        page.after = rows.last().map(&id);
        all.extend(rows);
        if !full {
            return Ok(all);
        }
    }
}

async fn script(db: &Db, cmd: ScriptCommand) -> anyhow::Result<()> {
    match cmd {
        ScriptCommand::Import { team, file } => {
            let team = find_team(db, &team).await?;
            let script = crate::chat::load_script(&file)?;
            let stored = db.insert_script(team.id, new_id(), &script, now()).await?;
            println!("{}", stored.id);
        }
        ScriptCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!("{:<36}  {:<8}  {:<20}  NAME", "ID", "TYPE", "UPDATED");
            for s in all_pages(|page| db.list_scripts(team.id, None, page), |s| s.id).await? {
                println!(
                    "{:<36}  {:<8}  {:<20}  {}",
                    s.id,
                    serde_json::to_value(s.definition.0.script_type)?
                        .as_str()
                        .unwrap_or("?"),
                    s.updated_at.format("%Y-%m-%d %H:%M:%SZ"),
                    s.name
                );
            }
        }
        ScriptCommand::Show { team, id, version } => {
            let team = find_team(db, &team).await?;
            let missing = || Missing(format!("team {} has no script {id}", team.name));
            let definition = match version {
                None => db.get_script(team.id, id).await?.ok_or_else(missing)?.definition.0,
                Some(v) => {
                    db.get_script_version(team.id, id, v)
                        .await?
                        .ok_or_else(|| Missing(format!("script {id} of team {} has no version {v}", team.name)))?
                        .definition
                        .0
                }
            };
            print!("{}", serde_yaml_ng::to_string(&definition)?);
        }
        ScriptCommand::Update {
            team,
            id,
            file,
            move_scheduled_calls,
        } => {
            let team = find_team(db, &team).await?;
            let script = crate::chat::load_script(&file)?;
            let scheduled = match move_scheduled_calls {
                true => crate::store::scripts::ScheduledCalls::Move,
                false => crate::store::scripts::ScheduledCalls::Keep,
            };
            let stored = db
                .replace_script(team.id, id, &script, scheduled, now())
                .await?
                .ok_or_else(|| Missing(format!("team {} has no script {id}", team.name)))?;
            println!("script {id} is now at version {}", stored.version);
        }
        ScriptCommand::Versions { team, id } => {
            let team = find_team(db, &team).await?;
            if db.get_script(team.id, id).await?.is_none() {
                return Err(Missing(format!("team {} has no script {id}", team.name)).into());
            }
            println!("{:<8}  {:<20}  NAME", "VERSION", "CREATED");
            for v in all_pages(|page| db.list_script_versions(team.id, id, page), |v| v.id).await? {
                println!(
                    "{:<8}  {:<20}  {}",
                    v.version,
                    v.created_at.format("%Y-%m-%d %H:%M:%SZ"),
                    v.name
                );
            }
        }
        ScriptCommand::Delete { team, id } => {
            let team = find_team(db, &team).await?;
            let deleted = db
                .delete_script(team.id, id)
                .await
                .map_err(|e| e.refused_as(|r| anyhow::anyhow!("script {id}: {r}")))?;
            if !deleted {
                return Err(Missing(format!("team {} has no script {id}", team.name)).into());
            }
            println!("script {id} deleted");
        }
    }
    Ok(())
}

async fn automation(db: &Db, cmd: AutomationCommand) -> anyhow::Result<()> {
    match cmd {
        AutomationCommand::Import { team, file } => {
            let team = find_team(db, &team).await?;
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            // YAML is a superset of JSON, so one parser reads both.
            let value: serde_json::Value =
                serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let def =
                crate::domain::automation::parse(value).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let (a, hook) = crate::api::automations::create_automation(db, team.id, def)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", a.id);
            if let Some(h) = hook {
                println!("hook: {}", h.path.unwrap_or_default());
                if let Some(secret) = h.secret {
                    println!("secret: {secret}");
                }
            }
        }
        AutomationCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!("{:<36}  {:<8}  {:<16}  NAME", "ID", "ENABLED", "TRIGGER");
            for a in all_pages(|page| db.list_automations(team.id, page), |a| a.id).await? {
                let enabled = if a.enabled { "yes" } else { "no" };
                println!("{:<36}  {:<8}  {:<16}  {}", a.id, enabled, a.trigger_type, a.name);
            }
        }
        AutomationCommand::Show { team, id } => {
            let team = find_team(db, &team).await?;
            let a = db
                .get_automation(team.id, id)
                .await?
                .ok_or_else(|| Missing(format!("team {} has no automation {id}", team.name)))?;
            println!("# {} ({})", a.name, if a.enabled { "enabled" } else { "disabled" });
            print!("{}", serde_yaml_ng::to_string(&a.definition.0)?);
        }
    }
    Ok(())
}

async fn number(db: &Db, cmd: NumberCommand) -> anyhow::Result<()> {
    use crate::numbers::{self, NumberError};
    // The service's refusals, with the team named; a missing number names the database too.
    let fail = |team: &Team, e: NumberError| -> anyhow::Error {
        match e {
            NumberError::NotFound => Missing(format!("team {} has no such number", team.name)).into(),
            NumberError::NoSuchScript(id) => Missing(format!("team {} has no script {id}", team.name)).into(),
            other => anyhow::anyhow!("{other}"),
        }
    };
    match cmd {
        NumberCommand::Add {
            team,
            number,
            inbound_script,
            trunk,
            twilio,
        } => {
            let team = find_team(db, &team).await?;
            let trunk = match trunk {
                Some(name) => Some(find_trunk(db, &team, &name).await?),
                None => None,
            };
            let n = numbers::add(
                db,
                &(&team).into(),
                &number,
                inbound_script,
                trunk.map(|t| t.id),
                twilio,
            )
            .await
            .map_err(|e| fail(&team, e))?;
            println!("{}", n.number);
        }
        NumberCommand::SetTrunk {
            team,
            number,
            trunk,
            no_trunk: _,
        } => {
            let team = find_team(db, &team).await?;
            let found = numbers::find(db, &(&team).into(), &number)
                .await
                .map_err(|e| fail(&team, e))?;
            let trunk = match trunk {
                Some(name) => Some(find_trunk(db, &team, &name).await?),
                None => None,
            };
            let number = numbers::set_trunk(db, team.id, found.id, trunk.as_ref().map(|t| t.id))
                .await
                .map_err(|e| fail(&team, e))?
                .number;
            match trunk {
                Some(t) => println!("{number} rings through trunk {}", t.name),
                None => println!("{number} is on no trunk (simulated network)"),
            }
        }
        NumberCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!("{:<16}  INBOUND SCRIPT", "NUMBER");
            let mut numbers = all_pages(|page| db.page_numbers(team.id, page), |n| n.id).await?;
            numbers.sort_by(|a, b| a.number.cmp(&b.number));
            for n in numbers {
                println!(
                    "{:<16}  {}",
                    n.number,
                    n.inbound_script_id.map_or("-".to_owned(), |i| i.to_string())
                );
            }
        }
        NumberCommand::Update {
            team,
            number,
            inbound_script,
            no_inbound_script: _,
        } => {
            let team = find_team(db, &team).await?;
            let found = numbers::find(db, &(&team).into(), &number)
                .await
                .map_err(|e| fail(&team, e))?;
            let n = numbers::set_inbound_script(db, team.id, found.id, inbound_script)
                .await
                .map_err(|e| fail(&team, e))?;
            match n.inbound_script_id {
                Some(s) => println!("{} is answered by script {s}", n.number),
                None => println!("{} is not answered (no inbound script)", n.number),
            }
        }
        NumberCommand::Remove { team, number } => {
            let team = find_team(db, &team).await?;
            let found = numbers::find(db, &(&team).into(), &number)
                .await
                .map_err(|e| fail(&team, e))?;
            numbers::remove(db, team.id, found.id)
                .await
                .map_err(|e| fail(&team, e))?;
            println!("{} removed from team {}", found.number, team.name);
        }
    }
    Ok(())
}

async fn dnc(db: &Db, cmd: DncCommand) -> anyhow::Result<()> {
    use crate::do_not_call;
    match cmd {
        DncCommand::Add { team, number, reason } => {
            let team = find_team(db, &team).await?;
            let (entry, added) = do_not_call::add(db, &(&team).into(), &number, reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let note = if added { "added" } else { "listed already" };
            println!("{} {note}", entry.phone_number);
        }
        DncCommand::List { team } => {
            let team = find_team(db, &team).await?;
            println!("{:<16}  {:<25}  REASON", "NUMBER", "ADDED");
            for s in all_pages(|page| db.page_suppressions(team.id, page), |s| s.id).await? {
                let added = s.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                println!(
                    "{:<16}  {added:<25}  {}",
                    s.phone_number,
                    s.reason.as_deref().unwrap_or("-")
                );
            }
        }
        DncCommand::Remove { team, number } => {
            let team = find_team(db, &team).await?;
            let number = do_not_call::remove(db, &(&team).into(), &number)
                .await
                .map_err(|e| match e {
                    do_not_call::SuppressionError::NotListed(n) => {
                        Missing(format!("team {} has no {n} on its do-not-call list", team.name)).into()
                    }
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("{number} removed from the do-not-call list of team {}", team.name);
        }
        DncCommand::Import { team, file } => {
            let team = find_team(db, &team).await?;
            let input: Box<dyn std::io::Read + Send> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin())
            } else {
                Box::new(
                    std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?,
                )
            };
            let rows = crate::import::CsvRows::read(input, u64::MAX, do_not_call::IMPORT_BATCH)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let report = do_not_call::import(db, &(&team).into(), rows)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for r in &report.invalid {
                eprintln!("line {}: {}", r.row, r.reason);
            }
            println!(
                "{} added, {} listed already, {} refused",
                report.added, report.already_listed, report.invalid_count
            );
        }
    }
    Ok(())
}

async fn simulate_inbound(db: &Db, settings: &Settings, to: &str, from: &str, persona: &str) -> anyhow::Result<()> {
    use crate::calls;
    let to = phone::normalize("to", to, phonenumber::country::Id::AU).map_err(|e| anyhow::anyhow!("{e}"))?;
    let owners = db.numbers_by_value(&to).await?;
    let number = match owners.as_slice() {
        [one] => one.clone(),
        [] => return Err(Missing(format!("no team has the number {to} (voxd number add)")).into()),
        _ => anyhow::bail!("{to} belongs to several teams"),
    };
    let script_id = number.inbound_script_id.ok_or_else(|| {
        anyhow::anyhow!("{to} has no inbound script (voxd number update --team TEAM {to} --inbound-script ID)")
    })?;
    let team = find_team(db, &number.team_id.to_string()).await?;
    let owner = format!("simulate-{}", std::process::id());
    let mut new = calls::NewCall::new(
        calls::Kind::Inbound {
            to_number: to.clone(),
            lease_owner: owner.clone(),
            lease_until_ms: now().timestamp_millis() + settings.dispatch_lease.as_millis() as i64,
        },
        script_id,
        calls::Callee::Upsert(Box::new(crate::domain::contact::ContactInput {
            phone_number: from.to_owned(),
            ..Default::default()
        })),
    );
    new.metadata.insert("sim_persona".into(), persona.into());
    let call = calls::create(db, &calls::TeamScope::from(&team), new, now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .call;
    println!("{}", call.id);
    let mut settings = settings.clone();
    settings.sim_delays = Default::default();
    let sim = Arc::new(crate::carrier::sim::SimCarrier {
        delays: settings.sim_delays,
    });
    let d = dispatcher(db.clone(), &settings, sim).with_owner(&owner);
    d.run_claimed(call.clone()).await?;
    let done = db
        .get_call(team.id, call.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the call vanished"))?;
    println!(
        "inbound call ended: status {}, end reason {}",
        done.status.map_or("-", |s| s.as_str()),
        done.end_reason.as_deref().unwrap_or("-")
    );
    if let Some(result) = done.result {
        for t in result.0["transcript"].as_array().into_iter().flatten() {
            println!(
                "{} › {}",
                t["role"].as_str().unwrap_or("?"),
                t["text"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option and argument of every command says what it is for; `chat` shows no database
    /// option, since it opens none.
    #[test]
    fn every_option_has_help_and_chat_only_its_own() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "voxd", &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:?}");
        let chat = cmd.find_subcommand("chat").unwrap();
        let ids: Vec<&str> = chat.get_arguments().map(|a| a.get_id().as_str()).collect();
        for db_option in ["config", "database_url", "data_dir"] {
            assert!(!ids.contains(&db_option), "chat offers --{db_option}");
        }
        let team_list = cmd.find_subcommand("team").unwrap().find_subcommand("list").unwrap();
        assert!(team_list.get_arguments().any(|a| a.get_id() == "database_url"));
    }
}
