//! Engine-level settings: the encoding thresholds (`*-max-listpack-*`, `set-max-intset-entries`) that decide
//! `OBJECT ENCODING` and the RDB writer's compact forms, and the number of databases.

/// Settings the executor and the value types consult. Defaults are redis-server 7.0's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub databases: usize,
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    /// Redis 7.2's `set-max-listpack-entries` / `-value`: the largest set of strings kept packed. Redis 7.0
    /// has no such form; a packed set still reports (and is saved as) a hashtable.
    pub set_max_listpack_entries: usize,
    pub set_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// `list-max-listpack-size`: negative means a byte limit per node (-1 = 4kb ... -5 = 64kb), positive a count.
    pub list_max_listpack_size: i64,
    pub list_compress_depth: i64,
    pub proto_max_bulk_len: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: 16,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
        }
    }
}
