//! Who may use the control endpoints: anyone on loopback, the bearer of the token
//! when one is set, nobody with the controls off; and the daemon will not open them
//! to the network without a token.

mod common;
mod served;

use std::net::SocketAddr;

use brigade_daemon::{Config, Control, ControlToken, Daemon, Error};
use served::{request, request_with, Served};

fn token(text: &str) -> Control {
    Control::Token(ControlToken::new(text).unwrap())
}

#[test]
fn with_a_token_only_its_bearer_controls() {
    let served = Served::start(Config {
        control: token("s3cret-t0ken"),
        ..Config::default()
    });
    served.wait_for_first_tick();
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Bearer s3cret-t0ke\r\n",
        "Authorization: Bearer s3cret-t0ken2\r\n",
        "Authorization: Basic czNjcmV0LXQwa2Vu\r\n",
        "Authorization: s3cret-t0ken\r\n",
    ] {
        let response = request_with(served.addr, "POST", "/control/pause", headers, None);
        assert_eq!(response.status, 401, "{headers:?}: {}", response.body);
        assert!(
            response
                .head
                .contains("WWW-Authenticate: Bearer realm=\"brigade\""),
            "{}",
            response.head
        );
        assert!(response.error().contains("token"), "{}", response.body);
    }
    let missing = request(served.addr, "POST", "/control/pause", None);
    assert_eq!(
        missing.error(),
        "the control endpoints need Authorization: Bearer TOKEN, with the daemon's token \
         (its --control-token-file or BRIGADE_CONTROL_TOKEN)"
    );
    assert_eq!(served.value("brigade_controller_paused"), Some(0.0));

    // The bearer, with the scheme in any case, is obeyed; metrics need no token.
    let paused = request_with(
        served.addr,
        "POST",
        "/control/pause",
        "Authorization: bearer s3cret-t0ken\r\n",
        None,
    );
    assert_eq!(paused.status, 200, "{}", paused.body);
    common::wait_for("the pause", || {
        served.value("brigade_controller_paused") == Some(1.0)
    });
    served.stop();
}

#[test]
fn with_the_controls_off_only_metrics_are_served() {
    let served = Served::start(Config {
        control: Control::Off,
        ..Config::default()
    });
    served.wait_for_first_tick();
    let response = request(
        served.addr,
        "POST",
        "/control/pin?stage=work&workers=2",
        None,
    );
    assert_eq!(response.status, 404, "{}", response.body);
    assert_eq!(
        response.error(),
        "no endpoint /control/pin: the control endpoints are off (--no-control)"
    );
    assert_eq!(
        served.value(r#"brigade_stage_pinned{stage="work"}"#),
        Some(0.0)
    );
    served.stop();
}

#[test]
fn open_controls_are_refused_off_loopback() {
    let everywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let open = Config {
        metrics_addr: Some(everywhere),
        ..Config::default()
    };
    let error = Daemon::new(&open).unwrap_err();
    assert!(matches!(error, Error::OpenControl { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "--metrics-addr 0.0.0.0:0: not a loopback address, so the control endpoints there \
         would let anyone who reaches it pin stages and change the budget; give them a \
         token (--control-token-file PATH, or the BRIGADE_CONTROL_TOKEN environment \
         variable) or serve metrics alone (--no-control)"
    );
    // With a token, or without the controls, it starts (and serves loopback too).
    for control in [token("t"), Control::Off] {
        let daemon = Daemon::new(&Config {
            control,
            ..open.clone()
        })
        .unwrap();
        let port = daemon.metrics_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let response = request(addr, "POST", "/control/pause", None);
        assert!(
            matches!(response.status, 401 | 404),
            "{}: {}",
            response.status,
            response.body
        );
    }
    // IPv6 loopback, and IPv4 loopback written as IPv6, are loopback.
    for addr in ["[::1]:0", "[::ffff:127.0.0.1]:0"] {
        let config = Config {
            metrics_addr: Some(addr.parse().unwrap()),
            ..Config::default()
        };
        if let Err(error) = Daemon::new(&config) {
            assert!(
                matches!(error, Error::MetricsAddr { .. }),
                "{addr}: {error}"
            );
        }
    }
}
