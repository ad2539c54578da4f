//! `teep trace`: a TAM's log (`teep tam serve`, standard error) as the sequence diagram of its
//! sessions: one arrow per TEEP message with its type, token prefix, manifests and err-code,
//! as text or Mermaid (`--mermaid FILE`).
//!
//! It reads the TAM's one line per received message (`teep message kind=.. device=..
//! token=.. outcome=..|dropped=..`, teep-tam's driver), which says what came in and what the
//! TAM answered. Any other line, and a line cut short or garbled, is skipped and counted,
//! never fatal: logs are input from outside.
//!
//! With `--capture DIR` it reads a Broker's capture instead (`teep device run --capture`,
//! [`capture`]): every body decoded, so each arrow names the TCs and err-codes themselves.

mod capture;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::input;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only this device's messages (its id, or the prefix of it the TAM logs).
    #[arg(long)]
    device: Option<String>,
    /// Also write the diagram as Mermaid (`sequenceDiagram`) to FILE.
    #[arg(long, value_name = "FILE")]
    mermaid: Option<PathBuf>,
    /// Read this capture directory (`teep device run --capture DIR`) instead of a log.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["file", "device"])]
    capture: Option<PathBuf>,
    /// The numbering the captured messages are decoded in.
    #[arg(long, value_enum, default_value = "26", requires = "capture")]
    numbering: crate::inspect::NumberingArg,
    /// The TAM's log; `-` or nothing reads standard input.
    file: Option<PathBuf>,
}

/// Who sent an arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum From {
    Tam,
    Agent,
}

/// One arrow of the diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Arrow {
    pub(crate) time: String,
    pub(crate) device: String,
    pub(crate) from: From,
    /// The message type (`QueryRequest`, ...).
    pub(crate) message: String,
    /// The token prefix the message carries, as far as the log tells.
    pub(crate) token: String,
    /// What else the log says of it: token prefix, manifests, err-code, why it was dropped.
    pub(crate) detail: String,
    /// The TAM dropped it (no answer, nothing committed).
    pub(crate) dropped: bool,
}

/// The arrows of a log, and how many lines were not TAM message lines.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) arrows: Vec<Arrow>,
    pub(crate) skipped: usize,
}

/// The TAM's message line's marker.
const MARKER: &str = " teep message ";

/// Longest string from a log field or a captured body kept on an arrow.
const MAX_TEXT: usize = 80;

/// Keeps printable ASCII that cannot end a label or start markup (in the text view or a
/// Mermaid label), at most [`MAX_TEXT`] characters: everything else becomes `_`. The one
/// cleaner of every string a log line or a capture brings in, both untrusted.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_TEXT)
        .map(|c| {
            if c.is_ascii_alphanumeric() || " /.-_~+%=()[]@:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.chars().count() > MAX_TEXT {
        out.push_str("..");
    }
    out
}

/// Removes ANSI colour sequences (`ESC [ ... letter`), which a terminal log carries.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `key=value` fields of a tracing line: values quoted (`"..."`) or up to the next space;
/// `outcome` and `dropped`, logged last and free-form (`UpdateSent { .. }`), take the rest.
fn fields(text: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(eq) = rest.find('=') {
        let (key, after) = rest.split_at(eq);
        let key = key.trim();
        let value = after.get(1..).unwrap_or_default();
        if key == "outcome" || key == "dropped" {
            out.push((key, value.trim_end().to_owned()));
            break;
        }
        let (v, next) = if let Some(quoted) = value.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (
                    quoted.get(..end).unwrap_or_default().to_owned(),
                    quoted.get(end + 1..).unwrap_or_default(),
                ),
                None => break, // cut short inside a quoted value
            }
        } else {
            let end = value.find(' ').unwrap_or(value.len());
            (
                value.get(..end).unwrap_or_default().to_owned(),
                value.get(end..).unwrap_or_default(),
            )
        };
        out.push((key, v));
        rest = next.trim_start();
    }
    out
}

fn camel(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "query-request" => "QueryRequest",
        "query-response" => "QueryResponse",
        "update" => "Update",
        "success" => "Success",
        "error" => "Error",
        _ => return None,
    })
}

/// The number after `key: ` in a Debug rendering (`manifests: 1`).
fn debug_field<'a>(debug: &'a str, key: &str) -> Option<&'a str> {
    let at = debug.find(&format!("{key}: "))? + key.len() + 2;
    let rest = debug.get(at..)?;
    let end = rest.find([',', ' ', '}']).unwrap_or(rest.len());
    rest.get(..end)
}

/// The err-code in a Debug rendering (`Some(ManifestProcessingFailed)`, `TemporaryError`).
fn debug_code(debug: &str, key: &str) -> Option<String> {
    let at = debug.find(&format!("{key}: "))? + key.len() + 2;
    let rest = debug.get(at..)?;
    let rest = rest.strip_prefix("Some(").unwrap_or(rest);
    let end = rest.find([',', ')', ' ', '}']).unwrap_or(rest.len());
    let code = rest.get(..end)?;
    (code != "None").then(|| code.to_owned())
}

/// Reads one line; `None` for a line that is not a whole TAM message line.
fn line(raw: &str) -> Option<Vec<Arrow>> {
    let text = strip_ansi(raw);
    let at = text.find(MARKER)?;
    let time = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    let f = fields(text.get(at + MARKER.len()..)?);
    let get = |k: &str| f.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
    let kind = get("kind")?;
    let device = clean(get("device").unwrap_or_default());
    let token = clean(get("token").unwrap_or_default());
    let arrow = |from, message: &str, detail: String, dropped| Arrow {
        time: time.clone(),
        device: device.clone(),
        from,
        message: message.to_owned(),
        token: if from == From::Agent || kind == "connect" {
            token.clone()
        } else {
            String::new()
        },
        detail,
        dropped,
    };
    let mut arrows = Vec::new();
    if kind != "connect" {
        let message = camel(kind).unwrap_or("unparsed message");
        let mut detail = String::new();
        if let Some(why) = get("dropped") {
            let _ = write!(detail, "dropped: {}", clean(why));
            arrows.push(arrow(From::Agent, message, detail, true));
            return Some(arrows);
        }
        if let Some(outcome) = get("outcome")
            && let Some(code) = debug_code(outcome, "code")
        {
            let _ = write!(detail, "err-code {}", clean(&code));
        }
        arrows.push(arrow(From::Agent, message, detail, false));
    } else if let Some(why) = get("dropped") {
        arrows.push(arrow(
            From::Agent,
            "connect",
            format!("dropped: {}", clean(why)),
            true,
        ));
        return Some(arrows);
    }
    let outcome = get("outcome")?;
    let name = outcome.split([' ', '{']).next().unwrap_or_default();
    match name {
        "QueryRequestSent" => arrows.push(arrow(From::Tam, "QueryRequest", String::new(), false)),
        "UpdateSent" => {
            let mut detail = format!(
                "manifests {}, unlinked {}",
                clean(debug_field(outcome, "manifests").unwrap_or("?")),
                clean(debug_field(outcome, "unlinked").unwrap_or("?"))
            );
            if let Some(code) = debug_code(outcome, "err_code") {
                let _ = write!(detail, ", err-code {}", clean(&code));
            }
            arrows.push(arrow(From::Tam, "Update", detail, false));
        }
        // Installed, UpToDate, AgentError: the exchange ends with no TEEP message.
        _ => {}
    }
    Some(arrows)
}

/// Fills in what one line cannot know from the lines after it: an anonymous connect's
/// QueryRequest belongs to the device whose QueryResponse echoes its token, and an Update's
/// token is the one its device's next Success or Error echoes.
fn link(arrows: &mut [Arrow]) {
    for i in 0..arrows.len() {
        let Some((head, tail)) = arrows.split_at_mut_checked(i + 1) else {
            continue;
        };
        let Some(a) = head.last_mut() else { continue };
        if a.from != From::Tam {
            continue;
        }
        if a.device.is_empty() && !a.token.is_empty() {
            if let Some(answer) = tail
                .iter()
                .find(|b| b.from == From::Agent && b.token == a.token)
            {
                a.device.clone_from(&answer.device);
            }
        } else if a.token.is_empty()
            && let Some(answer) = tail
                .iter()
                .find(|b| b.from == From::Agent && b.device == a.device)
        {
            a.token.clone_from(&answer.token);
        }
    }
}

/// All arrows of `log` (for `device` only, if given).
pub(crate) fn parse(log: &str, device: Option<&str>) -> Trace {
    let mut trace = Trace::default();
    for raw in log.lines() {
        match line(raw) {
            Some(arrows) => trace.arrows.extend(arrows),
            None => trace.skipped += 1,
        }
    }
    link(&mut trace.arrows);
    // The TAM logs a device id's prefix: a full id given on the command line matches it.
    trace.arrows.retain(|a| {
        device.is_none_or(|d| !a.device.is_empty() && (d.starts_with(&a.device) || a.device == d))
    });
    trace
}

fn label(a: &Arrow) -> String {
    let mut parts = Vec::with_capacity(2);
    if !a.token.is_empty() {
        parts.push(format!("token {}..", a.token));
    }
    if !a.detail.is_empty() {
        parts.push(a.detail.clone());
    }
    if parts.is_empty() {
        a.message.clone()
    } else {
        format!("{} ({})", a.message, parts.join(", "))
    }
}

/// The diagram for a terminal: one line per arrow, Agent on the left, TAM on the right.
pub(crate) fn text(trace: &Trace) -> String {
    let mut out = String::new();
    let mut device = None;
    for a in &trace.arrows {
        if device != Some(&a.device) {
            let _ = writeln!(out, "Agent {:<44} TAM", a.device);
            device = Some(&a.device);
        }
        let shaft = match (a.from, a.dropped) {
            (From::Agent, false) => "----------------------->",
            (From::Agent, true) => "-----------------------X",
            (From::Tam, _) => "<-----------------------",
        };
        let _ = writeln!(out, "{:<28} {shaft} {}", a.time, label(a));
    }
    out
}

/// The diagram as Mermaid `sequenceDiagram`, one Agent participant per device.
pub(crate) fn mermaid(trace: &Trace) -> String {
    let mut out = String::from("sequenceDiagram\n    participant TAM\n");
    let mut devices: Vec<&str> = Vec::new();
    for a in &trace.arrows {
        if !devices.contains(&a.device.as_str()) {
            devices.push(&a.device);
            let n = devices.len();
            let _ = writeln!(out, "    participant A{n} as Agent {}", a.device);
        }
    }
    for a in &trace.arrows {
        let n = devices
            .iter()
            .position(|d| *d == a.device)
            .map_or(0, |i| i + 1);
        let (from, to, arrow) = match (a.from, a.dropped) {
            (From::Agent, false) => (format!("A{n}"), "TAM".to_owned(), "->>"),
            (From::Agent, true) => (format!("A{n}"), "TAM".to_owned(), "-x"),
            (From::Tam, _) => ("TAM".to_owned(), format!("A{n}"), "->>"),
        };
        let _ = writeln!(out, "    {from}{arrow}{to}: {}", label(a));
    }
    out
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let trace = if let Some(dir) = &args.capture {
        crate::print_line(capture::HEADER)?;
        capture::parse(dir, args.numbering.into())?
    } else {
        let bytes = input::read_or_stdin(args.file.as_deref())?;
        let log = String::from_utf8_lossy(&bytes);
        parse(&log, args.device.as_deref())
    };
    tracing::info!(
        arrows = trace.arrows.len(),
        skipped = trace.skipped,
        "traced"
    );
    if let Some(path) = &args.mermaid {
        std::fs::write(path, mermaid(&trace))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    crate::print_line(text(&trace).trim_end())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_only_safe_characters() {
        assert_eq!(clean("a;b#c<d>\"e\n`|&"), "a_b_c_d__e____");
        assert!(clean(&"x".repeat(1000)).len() <= MAX_TEXT + 2);
        assert_eq!(clean("/%3Cscript%3E"), "/%3Cscript%3E");
    }
}
