//! The proxy without root: a connection that was not redirected (made to
//! the proxy's own address) is reset before anything is read, and reported.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon_l7::{Connection, Decider, Event, Limits, Proxy, Verdict};

struct PassAll;
impl Decider for PassAll {
    fn decide(&self, _: &Connection) -> Verdict {
        Verdict::Pass
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_was_not_redirected_is_reset() {
    let proxy = Proxy::bind(&["127.0.0.1:0".parse().unwrap()]).expect("bind");
    let addr = proxy.local_addrs()[0];
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(proxy.serve(
        Limits::default(),
        Arc::new(PassAll),
        Arc::new(move |e| ev.lock().unwrap().push(e)),
        rx,
    ));
    let got = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let mut b = [0u8; 8];
        s.read(&mut b).map_err(|e| e.kind())
    })
    .await
    .unwrap();
    assert_eq!(got, Err(ErrorKind::ConnectionReset));
    let all = events.lock().unwrap().clone();
    assert!(
        matches!(all.as_slice(), [Event::Refused { original_dst, .. }] if *original_dst == addr),
        "{all:?}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
}
