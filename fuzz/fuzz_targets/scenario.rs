#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficsim::fuzz_entry::scenario_bytes(data, &std::env::temp_dir());
});
