//! A real browser for the page tests: Debian's `chromium` driven by `chromedriver` over
//! WebDriver (the `fantoccini` client), headless, started by the test on a free port.
//!
//! Without `chromedriver` on the machine the tests say so and pass, unless
//! `REGISTRY_REQUIRE_BROWSER=1` (set by `.ci/run`), where a missing browser fails them.

use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `chromedriver`; killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9515)
}

/// Starts `chromedriver`, or `None` (after saying why) when it is not installed and not required.
pub async fn driver() -> Option<Driver> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_BROWSER").is_none(),
            "chromedriver is required (REGISTRY_REQUIRE_BROWSER) but not installed"
        );
        eprintln!("chromedriver is not installed: skipping the browser test");
        return None;
    }
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // Owned by the guard from here on: every path kills and waits for it.
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(driver);
    panic!("chromedriver did not start listening on {port}");
}

/// A new headless browser session with a window of `width` × `height` CSS pixels, scripts on
/// or off.
pub async fn browser(driver: &Driver, width: u32, height: u32, scripts: bool) -> Client {
    let mut prefs = serde_json::Map::new();
    prefs.insert("intl.accept_languages".into(), json!("ru-RU,ru"));
    if !scripts {
        prefs.insert(
            "profile.managed_default_content_settings.javascript".into(),
            json!(2),
        );
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("REGISTRY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--lang=ru-RU", "--force-device-scale-factor=1",
                format!("--window-size={width},{height}")
            ],
            "prefs": prefs
        }),
    );
    // chromedriver listens on plain HTTP on 127.0.0.1: no TLS between the test and it.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    client
        .set_window_size(width, height)
        .await
        .expect("window size");
    client
}
