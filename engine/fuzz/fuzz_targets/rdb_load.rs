//! The RDB loader on arbitrary bytes: it must never panic or over-allocate, and the parallel loader must
//! agree with the sequential one (same keys, or the same error at the same offset). The same bytes also go
//! through RESTORE's payload check and value decoding.

#![no_main]

use engine::config::EngineConfig;
use engine::keyspace::Keyspace;
use engine::rdb::{self, LoadOptions, ShardTarget};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Without the CRC check almost any change would be refused before decoding.
    let opts = LoadOptions { verify_checksum: false, ..LoadOptions::default() };
    let mut seq = Keyspace::new(opts.cfg.databases);
    let want = rdb::load(data, &opts, &mut seq);

    let mut shards = [Keyspace::new(opts.cfg.databases), Keyspace::new(opts.cfg.databases)];
    let mut targets: Vec<&mut dyn ShardTarget> = shards.iter_mut().map(|k| k as &mut dyn ShardTarget).collect();
    let route = |key: &[u8]| key.first().map_or(0, |&b| usize::from(b & 1));
    let got = rdb::load_sharded(data, &opts, &route, &mut targets);
    match (&want, &got) {
        (Ok(w), Ok(g)) => {
            assert_eq!(
                (w.keys_loaded, w.expires_loaded, w.expired_dropped, w.empty_skipped, &w.dbs),
                (g.keys_loaded, g.expires_loaded, g.expired_dropped, g.empty_skipped, &g.dbs)
            );
            let held: usize = shards.iter().flat_map(|s| s.dbs.iter()).map(|d| d.len()).sum();
            assert_eq!(held as u64, w.keys_loaded);
            for (db, d) in seq.dbs.iter().enumerate() {
                for e in d.table.iter() {
                    let found = shards[route(e.key())].dbs[db].get(e.key()).expect("every key in its shard");
                    assert!(found.value == e.value && found.expire_at == e.expire_at);
                }
            }
        }
        (Err(w), Err(g)) => assert_eq!((w.code(), w.offset(), w.to_string()), (g.code(), g.offset(), g.to_string())),
        _ => panic!("sequential {:?} vs parallel {:?}", want.as_ref().err(), got.as_ref().err()),
    }

    // RESTORE: the footer check, then the value decoder on the type byte and the rest.
    let _ = rdb::verify_dump_payload(data);
    if let Some((&ty, body)) = data.split_first() {
        let _ = rdb::decode_value(ty, body, &EngineConfig::default());
    }
});
