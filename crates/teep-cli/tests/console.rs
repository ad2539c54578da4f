//! The operator's console in a real browser: Debian's headless Chromium through its
//! ChromeDriver (`scripts/ensure-browser.sh` installs both; without them these tests fail),
//! driven with the fantoccini WebDriver client, against a whole deployment of real
//! processes (`teep tam serve`, `teep tee serve`, `teep device run --once`).
//!
//! With `TEEP_CONSOLE_SCREENSHOTS=DIR` the test also writes a screenshot of each page there
//! (how `docs/console/*.png` are made).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::deployment::{COUNTER_V1, Deployment, id_text};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a condition may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// A string with markup, sent by a "device" as an err-msg: the console must show it as text.
const MARKUP: &str = "<script>window.pwned=1</script><img src=x id=pwned>";

/// `chromedriver --port=0`, with the port it chose.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (run scripts/ensure-browser.sh)");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let port = loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "chromedriver exited");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim().trim_end_matches('.').parse().unwrap();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,1500"] }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session")
}

/// Runs `script` (a function body returning a value) until it returns something truthy.
async fn wait_for(c: &Client, what: &str, script: &str) -> Value {
    let start = Instant::now();
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The element with `id`, once the page has drawn it (a route change draws asynchronously).
async fn element(c: &Client, id: &str) -> fantoccini::elements::Element {
    let script = format!("return document.getElementById({}) !== null;", json!(id));
    wait_for(c, id, &script).await;
    c.find(Locator::Id(id)).await.unwrap()
}

/// The text of the first element matching `selector` (waiting for it).
async fn text_of(c: &Client, selector: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e && e.textContent;",
        json!(selector)
    );
    wait_for(c, selector, &script)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Clicks the first element matching `selector` (waiting for it).
async fn click(c: &Client, selector: &str) {
    let script = format!(
        "const e = document.querySelector({}); if (!e) return false; \
         e.dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return true;",
        json!(selector)
    );
    wait_for(c, selector, &script).await;
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("TEEP_CONSOLE_SCREENSHOTS") {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// One raw HTTP/1.1 request to `base` (`http://HOST:PORT`); the whole response.
fn http(base: &str, head: &str, body: &[u8]) -> String {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    let request = format!(
        "{head}\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn tc_list(d: &Deployment) -> Value {
    serde_json::from_str(&d.admin(&["tc", "list", "--json"])).unwrap()
}

fn policy_of(d: &Deployment) -> Value {
    serde_json::from_str(&d.admin(&["policy", "show"])).unwrap()
}

#[test]
fn the_console_shows_and_drives_a_real_deployment() {
    let d = Deployment::new();
    let counter = id_text(&["TEEP-Device", "counter", "suit"]);
    let other = id_text(&["TEEP-Device", "other", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&counter]);
    let tee = d.start_tee();
    d.policy_check();
    assert_eq!(d.tam_installed(), vec![(counter.clone(), 1)]);
    // The Broker (for `teep device list`); its own first check finds the device up to date.
    let broker = d.start_broker(300);
    let token = std::fs::read_to_string(format!("{}/admin.token", d.tam_data)).unwrap();

    // A device-supplied string with markup: an Error whose err-msg is HTML, signed by a key
    // the TAM does not know (dropped by the engine, recorded and shown by the console).
    std::fs::write(
        d.work().join("error.json"),
        json!({"type": "error", "token": "00112233445566778899aabbccddeeff",
            "err-code": {"value": 1}, "err-msg": MARKUP})
        .to_string(),
    )
    .unwrap();
    d.run(&[
        "encode",
        "--key",
        "signer.key",
        "error.json",
        "--out",
        "error.cbor",
    ]);
    let cbor = std::fs::read(d.work().join("error.cbor")).unwrap();
    let answer = http(
        &d.tam_uri.replace("/tam", ""),
        "POST /tam HTTP/1.1\r\nContent-Type: application/teep+cbor\r\nAccept: application/teep+cbor",
        &cbor,
    );
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        let console = format!("{}/console", d.admin_url);
        c.goto(&console).await.unwrap();

        // A wrong token is refused; the right one signs in.
        element(&c, "token")
            .await
            .send_keys("not-the-token")
            .await
            .unwrap();
        click(&c, "#signin").await;
        assert!(
            text_of(&c, "#signin-error")
                .await
                .contains("refused this token")
        );
        let field = element(&c, "token").await;
        field.clear().await.unwrap();
        field.send_keys(token.trim()).await.unwrap();
        click(&c, "#signin").await;

        // The fleet: the device a real session installed, up to date.
        let row = format!("#devices tr[data-device=\"{}\"]", d.device_id);
        let state = text_of(&c, &format!("{row} [data-state]")).await;
        assert_eq!(state, "up to date");
        assert!(text_of(&c, &row).await.contains(&format!("{counter} #1")));
        assert_eq!(text_of(&c, "[data-filter=up-to-date] .n").await, "1");

        // The markup err-msg is text: in the arrow's label and in the message's JSON view,
        // and no element or script of it exists.
        click(&c, "#sessions .arrow[data-type=error]").await;
        let shown = wait_for(
            &c,
            "the error's JSON view",
            "const t = document.getElementById('message-json').textContent; \
             return t.includes('err-msg') && t;",
        )
        .await;
        assert!(shown.as_str().unwrap().contains(MARKUP), "{shown}");
        let injected = c
            .execute(
                "return [document.querySelectorAll('script').length, \
                 !!document.getElementById('pwned'), window.pwned === undefined];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, json!([1, false, true]));
        screenshot(&c, "fleet").await;

        // The device: its session as a sequence diagram, one message opened.
        click(&c, &format!("{row} a.device-link")).await;
        assert_eq!(text_of(&c, "#device-id").await, d.device_id);
        let arrows = wait_for(
            &c,
            "a session with Update and Success",
            "for (const d of document.querySelectorAll('#sessions .diagram')) { \
               const a = [...d.querySelectorAll('.arrow')].map(e => e.dataset.type); \
               if (a.includes('success')) return a; } return false;",
        )
        .await;
        let arrows: Vec<&str> = arrows
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            arrows,
            [
                "empty",
                "query-request",
                "query-response",
                "update",
                "success"
            ]
        );
        // Its attestation over time: the first contact's appraisal, affirming.
        let verdicts = wait_for(
            &c,
            "the appraisal outcomes",
            "const v = [...document.querySelectorAll('#attestations tr[data-verdict]')] \
               .map(r => r.dataset.verdict); return v.length > 0 && v;",
        )
        .await;
        // (one per session that attested: the policy check's and the Broker's first)
        let verdicts = verdicts.as_array().unwrap();
        assert!(verdicts.iter().all(|v| v == "affirming"), "{verdicts:?}");
        assert!(
            text_of(&c, "#attestations")
                .await
                .contains("EAR status affirming")
        );
        click(&c, "#sessions .diagram .arrow[data-type=update]").await;
        let view = text_of(&c, "#message-json").await;
        let view: Value = serde_json::from_str(&view).unwrap_or_else(|e| panic!("{e}: {view}"));
        assert_eq!(view["message_type"], "update");
        assert_eq!(view["direction"], "to_agent");
        assert_eq!(view["device"], d.device_id.as_str());
        assert_eq!(view["json"]["payload"]["type"], "update", "{view}");
        screenshot(&c, "device").await;

        // TCs: a garbage file is refused and changes nothing; a signed envelope is taken.
        c.goto(&format!("{console}#/tcs")).await.unwrap();
        std::fs::write(
            d.work().join("garbage.suit"),
            b"\xa1\x02\x03 not an envelope",
        )
        .unwrap();
        let before = tc_list(&d);
        element(&c, "tc-file")
            .await
            .send_keys(d.work().join("garbage.suit").to_str().unwrap())
            .await
            .unwrap();
        assert!(
            wait_for(
                &c,
                "the refusal",
                "return document.getElementById('notice').textContent.includes('upload refused');"
            )
            .await
                == json!(true)
        );
        assert_eq!(tc_list(&d), before, "a refused upload changes nothing");
        d.create(
            &["TEEP-Device", "other", "ta"],
            1,
            &[],
            COUNTER_V1,
            "other.suit",
        );
        element(&c, "tc-file")
            .await
            .send_keys(d.work().join("other.suit").to_str().unwrap())
            .await
            .unwrap();
        let other_row = format!("#tcs tr[data-tc=\"{other}\"]");
        assert!(
            text_of(&c, &other_row)
                .await
                .contains("#1 signed by vendor")
        );
        let listed = tc_list(&d);
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["manifest_id"] == other.as_str()),
            "{listed}"
        );

        // Policy edited in place: a TC never uploaded is refused (nothing changes), then the
        // device's policy gains the new TC and its next session installs it.
        c.goto(&format!("{console}#/policy")).await.unwrap();
        let scope = format!("#policies tr[data-scope=\"device:{}\"]", d.device_id);
        let set_install = |value: String| {
            format!(
                "const r = document.querySelector({}); if (!r) return false; \
                 r.querySelector('input.install').value = {}; \
                 r.querySelector('button.save').click(); return true;",
                json!(scope),
                json!(value)
            )
        };
        let before = policy_of(&d);
        wait_for(&c, "the policy row", &set_install("/no/such/suit".into())).await;
        wait_for(
            &c,
            "the refusal",
            "return document.getElementById('notice').textContent.includes('policy refused');",
        )
        .await;
        assert_eq!(policy_of(&d), before, "a refused policy changes nothing");
        wait_for(
            &c,
            "the policy row",
            &set_install(format!("{counter}, {other}")),
        )
        .await;
        wait_for(
            &c,
            "the save",
            "return document.getElementById('notice').textContent.includes('saved');",
        )
        .await;
        screenshot(&c, "policy").await;
        c.goto(&format!("{console}#/fleet")).await.unwrap();
        wait_for(
            &c,
            "the device shown updating",
            &format!(
                "const e = document.querySelector({}); return e && e.textContent === 'updating';",
                json!(format!("{row} [data-state]"))
            ),
        )
        .await;
        d.policy_check();
        wait_for(
            &c,
            "the device updated",
            &format!(
                "const r = document.querySelector({}); \
                 return r && r.textContent.includes({}) && r.textContent.includes('up to date');",
                json!(row),
                json!(format!("{other} #1"))
            ),
        )
        .await;
        assert_eq!(d.listed_sequence(&["TEEP-Device", "other", "ta"]), Some(1));
        assert!(d.tam_installed().contains(&(other.clone(), 1)));

        // Revoke: the TC is marked revoked, and the device unlinks it at its next session.
        c.goto(&format!("{console}#/tcs")).await.unwrap();
        c.execute("window.confirm = () => true;", vec![])
            .await
            .unwrap();
        click(&c, &format!("{other_row} button.revoke")).await;
        wait_for(
            &c,
            "the TC shown revoked",
            &format!(
                "const e = document.querySelector({}); return e && e.textContent === 'revoked';",
                json!(format!("{other_row} .tc-state"))
            ),
        )
        .await;
        let revoked = tc_list(&d);
        let revoked = revoked
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["manifest_id"] == other.as_str())
            .unwrap();
        assert_eq!(revoked["revoked"], true);
        screenshot(&c, "tcs").await;
        d.policy_check();
        assert_eq!(d.listed_sequence(&["TEEP-Device", "other", "ta"]), None);
        assert!(!d.tam_installed().contains(&(other.clone(), 1)));

        // The audit log has the console's calls.
        c.goto(&format!("{console}#/audit")).await.unwrap();
        assert!(
            text_of(&c, "#audit")
                .await
                .contains("admin POST /admin/tcs/revoke -> 204")
        );
        screenshot(&c, "audit").await;
        c.close().await.unwrap();
    });

    // The same state-changing call from another site is refused with the right token, and
    // changes nothing; the console is served with a strict CSP.
    let auth = format!("Authorization: Bearer {}", token.trim());
    for forged in ["Origin: http://evil.example", "Sec-Fetch-Site: cross-site"] {
        let answer = http(
            &d.admin_url,
            &format!(
                "POST /admin/tcs/revoke HTTP/1.1\r\nContent-Type: application/json\r\n{auth}\r\n{forged}"
            ),
            json!({"manifest_id": counter}).to_string().as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("\"cross_site\""), "{answer}");
    }
    let counter_tc = tc_list(&d);
    let counter_tc = counter_tc
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["manifest_id"] == counter.as_str())
        .unwrap();
    assert_eq!(counter_tc["revoked"], false);
    let page = http(&d.admin_url, "GET /console HTTP/1.1", b"");
    let page = page.to_ascii_lowercase();
    assert!(
        page.contains(
            "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';"
        ),
        "{page}"
    );
    assert!(page.contains("x-frame-options: deny"), "{page}");
    assert!(!page.contains("<script>"), "no inline script");
    broker.stop();
    tee.stop();
}
