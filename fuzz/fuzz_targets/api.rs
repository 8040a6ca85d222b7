#![no_main]
// Every method of the table, the first byte choosing which: a method added
// to the table is fuzzed here without a target of its own.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((pick, request)) = data.split_first() {
        let methods = mfa_facade_fuzz::methods().len().max(1);
        mfa_facade_fuzz::run(usize::from(*pick) % methods, request);
    }
});
