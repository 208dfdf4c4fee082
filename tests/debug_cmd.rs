//! DEBUG subcommands that tests and benchmarks lean on, side by side with redis-server 7.0.15.

use moon_tests::{have_redis_tools, Server, Value};

/// DEBUG POPULATE: names, values (cut or zero-padded to a size), existing keys left alone, the errors, and
/// nothing counted as a change; the same replies and DEBUG DIGEST as redis-server.
fn debug_populate(shards: usize) {
    if !have_redis_tools("debug_populate", &["redis-server"]) {
        return;
    }
    let script: &[&[&str]] = &[
        &["SET", "key:1", "keep"],
        &["SET", "s", "1"],
        &["DEBUG", "POPULATE", "1000"],
        &["DEBUG", "POPULATE", "20", "pfx", "12"],
        &["DEBUG", "POPULATE", "20", "cut", "3"],
        &["DEBUG", "POPULATE", "3", "s"],
        &["DEBUG", "POPULATE", "0"],
        &["DEBUG", "POPULATE", "-1"],
        &["DEBUG", "POPULATE", "x"],
        &["DEBUG", "POPULATE", "1", "a", "-5"],
        &["DEBUG", "POPULATE"],
        &["GET", "key:1"],
        &["GET", "key:999"],
        &["GET", "pfx:7"],
        &["GET", "cut:15"],
        &["GET", "s"],
        &["DBSIZE"],
        &["SELECT", "3"],
        &["DEBUG", "POPULATE", "5"],
        &["DBSIZE"],
        &["DEBUG", "DIGEST"],
    ];
    let run = |server: &Server| -> Vec<Value> {
        let mut c = server.conn();
        let mut out: Vec<Value> = script.iter().map(|cmd| c.cmd(cmd)).collect();
        let info = c.cmd(&["INFO", "persistence"]).text();
        let changes = info.lines().find(|l| l.starts_with("rdb_changes_since_last_save:")).unwrap().to_string();
        out.push(Value::Simple(changes));
        out
    };
    let want = run(&Server::redis());
    let got = run(&Server::moon(shards));
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "step {i}: {:?}", script.get(i));
    }
    assert_eq!(want[16], Value::Int(1000 + 40 + 3 + 1));
}

shard_tests!(debug_populate);
