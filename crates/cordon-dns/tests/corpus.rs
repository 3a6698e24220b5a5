//! The fuzz corpus (crates/cordon-dns/fuzz/corpus/<target>/) run through
//! the fuzz targets' own bodies on the stable toolchain, so every input a
//! fuzzer kept or crashed on stays checked by `cargo test`.
//!
//! `cargo test -p cordon-dns --test corpus -- --ignored write_seeds`
//! rewrites the hand-made seeds (then minimise with `cargo fuzz cmin`, see
//! docs/design.md).

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cordon_dns::hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use cordon_dns::hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use cordon_dns::hickory_proto::rr::{Name, RData, Record, RecordType};
use targets::Outcome;

fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir(target))
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).expect("corpus file");
            (p, b)
        })
        .collect()
}

/// Runs `f` on every file of `target`'s corpus, naming the file that fails.
fn run_all<T>(target: &str, f: impl Fn(&[u8]) -> T) -> Vec<T> {
    let all = inputs(target);
    assert!(
        all.len() >= 10,
        "the {target} corpus has {} files",
        all.len()
    );
    all.iter()
        .map(
            |(p, b)| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(b))) {
                Ok(t) => t,
                Err(_) => panic!("{} breaks an invariant (see above)", p.display()),
            },
        )
        .collect()
}

#[test]
fn the_query_corpus_holds_the_invariants() {
    run_all("query", targets::query);
}

#[test]
fn the_answer_corpus_holds_the_invariants() {
    run_all("answer", targets::answer);
}

/// Also a control of the harness: the corpus reaches every verdict, so
/// the invariants checked on the refused and dropped paths are not the
/// only ones exercised.
#[test]
fn the_proxy_corpus_holds_the_invariants_and_reaches_every_verdict() {
    let seen: HashSet<Outcome> = run_all("proxy", targets::proxy).into_iter().collect();
    for o in [
        Outcome::Answered,
        Outcome::Refused,
        Outcome::Failed,
        Outcome::Dropped,
    ] {
        assert!(seen.contains(&o), "no corpus input ends {o:?}");
    }
}

/// The harness's positive control: a well-formed answer for an allowed
/// name is released, a name off the list is refused.
#[test]
fn the_proxy_harness_answers_and_refuses() {
    let ok = proxy_input(
        0b0001,
        &query("api.example.com.", RecordType::A),
        &a_answer(),
    );
    assert_eq!(targets::proxy(&ok), Outcome::Answered);
    let off = proxy_input(0b0001, &query("evil.test.", RecordType::A), &a_answer());
    assert_eq!(targets::proxy(&off), Outcome::Refused);
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn query_msg(n: &str, ty: RecordType) -> Message {
    let mut m = Message::new(0x5eed, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(n), ty));
    m
}

fn query(n: &str, ty: RecordType) -> Vec<u8> {
    query_msg(n, ty).to_vec().expect("encodes")
}

fn response(q: &str, ty: RecordType, answers: Vec<Record>) -> Message {
    let mut m = query_msg(q, ty);
    m.metadata.message_type = MessageType::Response;
    m.metadata.recursion_available = true;
    m.add_answers(answers);
    m
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn a(s: &str) -> RData {
    RData::A(A(s.parse().expect("v4")))
}

fn a_answer() -> Vec<u8> {
    response(
        "api.example.com.",
        RecordType::A,
        vec![rec("api.example.com.", 300, a("203.0.113.10"))],
    )
    .to_vec()
    .expect("encodes")
}

fn proxy_input(flags: u8, q: &[u8], reply: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend(u16::try_from(q.len()).expect("small").to_be_bytes());
    v.extend(q);
    v.extend(reply);
    v
}

/// A header with one question whose name is a compression pointer to
/// itself (offset 12), then `tail`.
fn pointer_loop(flags: u16, ancount: u16, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0x12, 0x34];
    v.extend(flags.to_be_bytes());
    v.extend([0, 1]);
    v.extend(ancount.to_be_bytes());
    v.extend([0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    v.extend(tail);
    v
}

/// The hand-made seeds: well-formed queries and answers (A, AAAA, CNAME
/// chains, EDNS, name compression) and malformed ones.
#[test]
#[ignore = "writes the seed corpus"]
fn write_seeds() {
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    let mut with_edns = query_msg("www.example.org.", RecordType::AAAA);
    with_edns.set_edns(edns.clone());
    let with_edns = with_edns.to_vec().expect("encodes");
    let mut two = query_msg("api.example.com.", RecordType::A);
    two.add_query(Query::query(name("evil.test."), RecordType::A));
    let mut none = query_msg("x.", RecordType::A);
    none.queries.clear();
    let mut not_query = query_msg("api.example.com.", RecordType::A);
    not_query.metadata.message_type = MessageType::Response;
    let long = format!("{}.example.org.", vec!["a".repeat(63); 3].join("."));
    let dotted = Name::from_labels(vec![&b"a"[..], b"b.example", b"org"]).expect("labels");
    let mut dotted_q = query_msg("x.", RecordType::A);
    dotted_q.queries[0].name = dotted;
    let allowed = query("api.example.com.", RecordType::A);

    let queries: Vec<(&str, Vec<u8>)> = vec![
        ("a-allowed", allowed.clone()),
        ("aaaa-wildcard-edns", with_edns.clone()),
        ("upper-case", query("API.Example.COM.", RecordType::A)),
        ("off-list", query("evil.test.", RecordType::A)),
        ("suffix-not-below", query("example.org.", RecordType::A)),
        ("lookalike", query("badexample.org.", RecordType::A)),
        ("txt", query("t.cdn.test.", RecordType::TXT)),
        ("long-name", query(&long, RecordType::A)),
        ("dot-in-label", dotted_q.to_vec().expect("encodes")),
        ("two-questions", two.to_vec().expect("encodes")),
        ("no-question", none.to_vec().expect("encodes")),
        ("a-response", not_query.to_vec().expect("encodes")),
        ("truncated", allowed[..allowed.len() - 5].to_vec()),
        ("header-only", allowed[..12].to_vec()),
        ("pointer-loop", pointer_loop(0x0100, 0, &[])),
        ("empty", vec![]),
    ];

    let chain = response(
        "x.example.org.",
        RecordType::A,
        vec![
            rec(
                "x.example.org.",
                300,
                RData::CNAME(CNAME(name("edge.cdn.test."))),
            ),
            rec(
                "edge.cdn.test.",
                60,
                RData::CNAME(CNAME(name("e1.cdn.test."))),
            ),
            rec("e1.cdn.test.", 30, a("203.0.113.7")),
            rec(
                "e1.cdn.test.",
                30,
                RData::AAAA(AAAA("2001:db8::7".parse().expect("v6"))),
            ),
            rec("evil.test.", 30, a("203.0.113.66")),
        ],
    );
    let mut chain_edns = chain.clone();
    chain_edns.set_edns(edns);
    let cname_loop = response(
        "a.cdn.test.",
        RecordType::A,
        vec![
            rec("a.cdn.test.", 30, RData::CNAME(CNAME(name("b.cdn.test.")))),
            rec("b.cdn.test.", 30, RData::CNAME(CNAME(name("a.cdn.test.")))),
        ],
    );
    let many = response(
        "api.example.com.",
        RecordType::A,
        (0..40u8)
            .map(|i| {
                rec(
                    "api.example.com.",
                    u32::from(i) * 1000,
                    RData::A(A([203, 0, 113, i].into())),
                )
            })
            .collect(),
    );
    let txt = response(
        "t.cdn.test.",
        RecordType::TXT,
        vec![rec(
            "t.cdn.test.",
            10,
            RData::TXT(TXT::new(vec!["v=1".into()])),
        )],
    );
    let ttl_extremes = response(
        "api.example.com.",
        RecordType::A,
        vec![
            rec("api.example.com.", 0, a("203.0.113.1")),
            rec("api.example.com.", u32::MAX, a("203.0.113.2")),
            rec("api.example.com.", 5, a("203.0.113.1")),
        ],
    );
    let mut truncated_tc = response("api.example.com.", RecordType::A, vec![]);
    truncated_tc.metadata.truncation = true;
    let good = a_answer();
    // An answer record whose owner is a pointer to itself.
    let mut rr_loop = good[..good.len() - 16].to_vec();
    let own = u8::try_from(rr_loop.len()).expect("short");
    rr_loop.extend([0xc0, own, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 9]);
    let other_question = response(
        "evil.test.",
        RecordType::A,
        vec![rec("evil.test.", 300, a("203.0.113.66"))],
    );

    let enc = |m: &Message| m.to_vec().expect("encodes");
    let answers: Vec<(&str, Vec<u8>)> = vec![
        ("a", good.clone()),
        ("cname-chain", enc(&chain)),
        ("cname-chain-edns", enc(&chain_edns)),
        ("cname-loop", enc(&cname_loop)),
        ("forty-addresses", enc(&many)),
        ("txt", enc(&txt)),
        ("ttl-extremes", enc(&ttl_extremes)),
        ("tc-bit", enc(&truncated_tc)),
        ("rr-pointer-loop", rr_loop.clone()),
        (
            "question-pointer-loop",
            pointer_loop(0x8180, 1, &good[good.len() - 16..]),
        ),
        ("truncated", good[..good.len() - 3].to_vec()),
        ("other-question", enc(&other_question)),
    ];
    let write = |target: &str, name: &str, sel: Option<u8>, bytes: &[u8]| {
        let d = dir(target);
        std::fs::create_dir_all(&d).expect("corpus dir");
        let mut v = sel.map(|s| vec![s]).unwrap_or_default();
        v.extend(bytes);
        std::fs::write(d.join(format!("seed-{name}")), v).expect("write seed");
    };
    for (n, b) in &queries {
        write("query", n, None, b);
    }
    for (n, b) in &answers {
        write("answer", n, Some(0), b);
    }
    write(
        "answer",
        "forty-addresses-cap4-min300",
        Some(0b0011_0011),
        &enc(&many),
    );
    write(
        "answer",
        "cname-chain-by-owner",
        Some(0b0100_0000),
        &enc(&chain),
    );

    let q_chain = query("x.example.org.", RecordType::A);
    let q_loop = query("a.cdn.test.", RecordType::A);
    let q_txt = query("t.cdn.test.", RecordType::TXT);
    let proxies: Vec<(&str, Vec<u8>)> = vec![
        ("answered", proxy_input(1, &allowed, &good)),
        (
            "answered-chain",
            proxy_input(1, &q_chain, &enc(&chain_edns)),
        ),
        (
            "answered-forty-min300-max30",
            proxy_input(1 | (0b0111 << 4), &allowed, &enc(&many)),
        ),
        ("answered-no-address", proxy_input(1, &q_txt, &enc(&txt))),
        (
            "answered-cname-loop",
            proxy_input(1, &q_loop, &enc(&cname_loop)),
        ),
        ("open-fails", proxy_input(1 | 2, &allowed, &good)),
        ("wrong-id", proxy_input(0, &allowed, &good)),
        (
            "other-question",
            proxy_input(1, &allowed, &enc(&other_question)),
        ),
        ("reply-is-query", proxy_input(1, &allowed, &allowed)),
        (
            "reply-truncated",
            proxy_input(1, &allowed, &good[..good.len() - 3]),
        ),
        ("reply-pointer-loop", proxy_input(1, &allowed, &rr_loop)),
        (
            "refused",
            proxy_input(1, &query("evil.test.", RecordType::A), &good),
        ),
        (
            "refused-nxdomain",
            proxy_input(1 | 4, &query("example.org.", RecordType::A), &good),
        ),
        (
            "refused-dot-in-label",
            proxy_input(1, &dotted_q.to_vec().expect("encodes"), &good),
        ),
        ("stranger", proxy_input(1 | 8, &allowed, &good)),
        (
            "unreadable",
            proxy_input(1, &pointer_loop(0x0100, 0, &[]), &good),
        ),
        ("aaaa-edns", proxy_input(1, &with_edns, &enc(&chain))),
    ];
    for (n, b) in &proxies {
        write("proxy", n, None, b);
    }
}
