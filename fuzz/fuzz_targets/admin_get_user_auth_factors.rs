#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mfa_facade_fuzz::run_named(
    "AdminGetUserAuthFactors",
    data
));
