//! `teep tam serve` with its admin API, driven end to end by the admin commands: the token
//! file, signer anchors, TC upload (and a refused rollback), listing, policy, revocation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{ok, teep};

/// Runs `teep tam ARGS --admin-url URL --data-dir DATA` (token from the data directory).
fn admin(url: &str, data: &Path, args: &[&str]) -> Output {
    teep()
        .arg("tam")
        .args(args)
        .args(["--admin-url", url, "--data-dir"])
        .arg(data)
        .env_remove("TEEP_TAM_ADMIN_TOKEN")
        .output()
        .unwrap()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn run(args: &[&str], dir: &Path) {
    let out = teep().args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn admin_commands_drive_a_running_tam() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tam");
    let mut child = teep()
        .args([
            "tam",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut token) = (None, None);
    loop {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "exited early");
        let line = line.trim();
        if let Some(t) = line.strip_prefix("admin token (printed once): ") {
            token = Some(t.to_owned());
        }
        if let Some(a) = line.strip_prefix("admin API on ") {
            url = Some(a.to_owned());
        }
        if line.starts_with("listening on http://") {
            break;
        }
    }
    let (url, token) = (url.unwrap(), token.unwrap());
    let token_file = data.join("admin.token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let work = dir.path();
    std::fs::write(work.join("app.bin"), b"the app").unwrap();
    run(&["keys", "generate", "--out", "signer.key"], work);
    let create = |seq: &str, out: &str| {
        run(
            &[
                "suit",
                "create",
                "--component-id",
                "TEEP-Device",
                "--component-id",
                "app",
                "--component-id",
                "ta",
                "--seq",
                seq,
                "--payload",
                "app.bin",
                "--out",
                out,
            ],
            work,
        );
    };
    create("1", "app1.unsigned");
    run(
        &[
            "suit",
            "sign",
            "--key",
            "signer.key",
            "app1.unsigned",
            "--out",
            "app1.suit",
        ],
        work,
    );
    let app = "/TEEP-Device/app/suit".to_owned();

    // Without a signer anchor the envelope is refused.
    let env1 = work.join("app1.suit");
    let env1 = env1.to_str().unwrap();
    let err = failed(admin(&url, &data, &["tc", "add", env1]));
    assert!(
        err.contains("422") && err.contains("envelope refused"),
        "{err}"
    );

    let key = work.join("signer.key.pub");
    let out = ok(admin(
        &url,
        &data,
        &[
            "signer",
            "add",
            "--name",
            "vendor",
            "--key",
            key.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.trim(), "signer vendor added");
    assert_eq!(
        ok(admin(&url, &data, &["signer", "list"])).trim(),
        "vendor scope=*"
    );

    let out = ok(admin(&url, &data, &["tc", "add", env1]));
    assert_eq!(out.trim(), format!("added {app} sequence 1"));
    let err = failed(admin(&url, &data, &["tc", "add", env1]));
    assert!(
        err.contains("409") && err.contains("not above the latest"),
        "{err}"
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["tc", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["manifest_id"], app.as_str());
    assert_eq!(list[0]["versions"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(admin(&url, &data, &["tc", "list"])).trim(),
        format!("{app} versions 1")
    );

    let out = ok(admin(
        &url,
        &data,
        &["policy", "set", "--class", "phone", "--tc", &app],
    ));
    assert_eq!(out.trim(), "policy of class phone set");
    let policy: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["policy", "show"]))).unwrap();
    assert_eq!(policy["classes"]["phone"]["install"][0], app.as_str());
    let err = failed(admin(
        &url,
        &data,
        &["policy", "set", "--class", "phone", "--tc", "/ff"],
    ));
    assert!(err.contains("400"), "{err}");

    assert_eq!(ok(admin(&url, &data, &["devices", "--json"])).trim(), "[]");
    let err = failed(admin(&url, &data, &["device", "revoke", &"00".repeat(32)]));
    assert!(err.contains("404"), "{err}");

    assert_eq!(
        ok(admin(&url, &data, &["tc", "revoke", &app])).trim(),
        format!("revoked {app}")
    );
    assert_eq!(
        ok(admin(&url, &data, &["tc", "list"])).trim(),
        format!("{app} versions 1 revoked")
    );
    assert_eq!(
        ok(admin(&url, &data, &["signer", "remove", "vendor"])).trim(),
        "signer vendor removed"
    );

    // A wrong token (flag or environment) is refused.
    let err = failed(admin(&url, &data, &["tc", "list", "--admin-token", "nope"]));
    assert!(err.contains("401"), "{err}");
    let out = teep()
        .args(["tam", "devices", "--admin-url", &url])
        .env("TEEP_TAM_ADMIN_TOKEN", "nope")
        .output()
        .unwrap();
    assert!(failed(out).contains("401"));

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}
