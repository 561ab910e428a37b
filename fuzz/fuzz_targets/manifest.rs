#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    trafficsim::fuzz_entry::manifest_bytes(data);
});
