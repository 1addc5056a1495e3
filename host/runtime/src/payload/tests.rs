//! Every WIT type against real component types: the types come from a
//! component built here from WIT text, so they are exactly what wasmtime
//! hands the worker at run time.

use super::*;
use serde_json::json;
use std::collections::HashMap;
use wasmtime::component::types::ComponentItem;

const WIT: &str = r#"
package test:payload;
world types {
    record item { sku: string, qty: u32, note: option<string> }
    record order { order-id: u64, items: list<item>, express: bool }
    variant shape { circle(f64), square(tuple<u32, u32>), nothing }
    enum color { red, dark-green }
    flags perms { read, write, exec }
    export t-bool: func(x: bool);
    export t-u8: func(x: u8);
    export t-s8: func(x: s8);
    export t-u16: func(x: u16);
    export t-s16: func(x: s16);
    export t-u32: func(x: u32);
    export t-s32: func(x: s32);
    export t-u64: func(x: u64);
    export t-s64: func(x: s64);
    export t-f32: func(x: f32);
    export t-f64: func(x: f64);
    export t-char: func(x: char);
    export t-string: func(x: string);
    export t-list: func(x: list<u16>);
    export t-record: func(x: order);
    export t-tuple: func(x: tuple<string, s32>);
    export t-variant: func(x: shape);
    export t-enum: func(x: color);
    export t-option: func(x: option<u32>);
    export t-result: func(x: result<string, u32>);
    export t-result-empty: func(x: result);
    export t-flags: func(x: perms);
    export two: func(a: string, b: option<u32>);
}
"#;

/// Parameter lists of every export of a component built from [`WIT`].
fn params() -> HashMap<String, Vec<(String, Type)>> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("types.wit", WIT).unwrap();
    let world = resolve.select_world(&[pkg], Some("types")).unwrap();
    let mut module = wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    let bytes = wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap();
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, &bytes).unwrap();
    let mut out = HashMap::new();
    for (name, item) in component.component_type().exports(&engine) {
        if let ComponentItem::ComponentFunc(f) = item.ty {
            out.insert(name.to_owned(), f.params().map(|(n, t)| (n.to_owned(), t)).collect());
        }
    }
    out
}

fn ty(all: &HashMap<String, Vec<(String, Type)>>, func: &str) -> Type {
    all[func][0].1.clone()
}

/// JSON → WIT → JSON gives back `expected_out`.
fn round_trip(all: &HashMap<String, Vec<(String, Type)>>, func: &str, input: Json, expected_out: Json) {
    let t = ty(all, func);
    let val = json_to_val(&input, &t, "").unwrap_or_else(|e| panic!("{func}: {input} rejected: {e}"));
    assert_eq!(val_to_json(&val), expected_out, "{func}");
}

fn rejects(all: &HashMap<String, Vec<(String, Type)>>, func: &str, input: Json) -> PayloadError {
    let t = ty(all, func);
    json_to_val(&input, &t, "").expect_err(&format!("{func} accepted {input}"))
}

#[test]
fn scalars_round_trip() {
    let p = params();
    round_trip(&p, "t-bool", json!(true), json!(true));
    round_trip(&p, "t-u8", json!(255), json!(255));
    round_trip(&p, "t-s8", json!(-128), json!(-128));
    round_trip(&p, "t-u16", json!(65535), json!(65535));
    round_trip(&p, "t-s16", json!(-32768), json!(-32768));
    round_trip(&p, "t-u32", json!(4_294_967_295u64), json!(4_294_967_295u64));
    round_trip(&p, "t-s32", json!(-2_147_483_648i64), json!(-2_147_483_648i64));
    round_trip(&p, "t-u64", json!(u64::MAX), json!(u64::MAX));
    round_trip(&p, "t-u64", json!("18446744073709551615"), json!(u64::MAX));
    round_trip(&p, "t-s64", json!(i64::MIN), json!(i64::MIN));
    round_trip(&p, "t-f32", json!(1.5), json!(1.5));
    round_trip(&p, "t-f64", json!(-0.25), json!(-0.25));
    round_trip(&p, "t-f64", json!("NaN"), json!("NaN"));
    round_trip(&p, "t-f64", json!("-Infinity"), json!("-Infinity"));
    round_trip(&p, "t-char", json!("é"), json!("é"));
    round_trip(&p, "t-string", json!("hello"), json!("hello"));
}

#[test]
fn integer_ranges_are_checked() {
    let p = params();
    for (func, bad) in [
        ("t-u8", json!(256)),
        ("t-u8", json!(-1)),
        ("t-s8", json!(128)),
        ("t-u16", json!(65536)),
        ("t-s16", json!(-32769)),
        ("t-u32", json!(-1)),
        ("t-s32", json!(2_147_483_648u64)),
        ("t-s64", json!(u64::MAX)),
        ("t-u32", json!(1.5)),
    ] {
        let e = rejects(&p, func, bad.clone());
        assert!(e.found.contains("out of range") || e.found.contains("not an integer"), "{func} {bad}: {e}");
    }
    assert_eq!(rejects(&p, "t-u8", json!(300)).to_string(), "expected u8, found number 300 (out of range)");
    rejects(&p, "t-u32", json!("12"));
    rejects(&p, "t-char", json!("ab"));
    rejects(&p, "t-char", json!(""));
    rejects(&p, "t-bool", json!(0));
    rejects(&p, "t-string", json!(null));
}

#[test]
fn records_lists_and_options() {
    let p = params();
    round_trip(
        &p,
        "t-record",
        json!({"orderId": 7, "items": [{"sku": "A", "qty": 2}], "express": false}),
        json!({"order_id": 7, "items": [{"sku": "A", "qty": 2, "note": null}], "express": false}),
    );
    round_trip(&p, "t-record", json!({"order-id": 7, "items": [], "express": true}), json!({"order_id": 7, "items": [], "express": true}));
    round_trip(&p, "t-list", json!([1, 2, 3]), json!([1, 2, 3]));
    round_trip(&p, "t-option", json!(null), json!(null));
    round_trip(&p, "t-option", json!(5), json!(5));
    round_trip(&p, "t-tuple", json!(["a", -1]), json!(["a", -1]));
}

#[test]
fn record_errors_name_the_field_path_and_type() {
    let p = params();
    let e = rejects(&p, "t-record", json!({"order_id": 7, "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": -3}], "express": true}));
    assert_eq!(e.path, ".items[1].qty");
    assert_eq!(e.expected, "u32");
    assert!(e.found.contains("-3"), "{e}");
    let e = rejects(&p, "t-record", json!({"order_id": 7, "items": []}));
    assert_eq!(e.path, ".express");
    assert!(e.found.contains("missing"), "{e}");
    // Unknown fields are ignored (a client adding a field breaks nothing),
    // unless the plugin asks for strict payloads.
    let extra = json!({"order_id": 7, "items": [{"sku": "A", "qty": 1, "colour": "red"}], "express": true, "expres": 1});
    round_trip(&p, "t-record", extra.clone(), json!({"order_id": 7, "items": [{"sku": "A", "qty": 1, "note": null}], "express": true}));
    let e = json_to_val_with(&extra, &ty(&p, "t-record"), "", UnknownFields::Refuse).unwrap_err();
    assert!(e.found.contains("colour") && e.path == ".items[0]", "{e}");
    rejects(&p, "t-tuple", json!(["a"]));
    rejects(&p, "t-list", json!({"a": 1}));
}

#[test]
fn variants_enums_results_and_flags() {
    let p = params();
    round_trip(&p, "t-variant", json!({"circle": 2.5}), json!({"circle": 2.5}));
    round_trip(&p, "t-variant", json!({"square": [1, 2]}), json!({"square": [1, 2]}));
    round_trip(&p, "t-variant", json!("nothing"), json!("nothing"));
    round_trip(&p, "t-variant", json!({"nothing": null}), json!("nothing"));
    rejects(&p, "t-variant", json!({"triangle": 1}));
    rejects(&p, "t-variant", json!("circle"));
    rejects(&p, "t-variant", json!({"circle": 1, "square": [1, 1]}));
    round_trip(&p, "t-enum", json!("red"), json!("red"));
    round_trip(&p, "t-enum", json!("dark_green"), json!("dark_green"));
    round_trip(&p, "t-enum", json!("dark-green"), json!("dark_green"));
    rejects(&p, "t-enum", json!("blue"));
    round_trip(&p, "t-result", json!({"ok": "fine"}), json!({"ok": "fine"}));
    round_trip(&p, "t-result", json!({"err": 3}), json!({"err": 3}));
    round_trip(&p, "t-result-empty", json!({"ok": null}), json!({"ok": null}));
    round_trip(&p, "t-result-empty", json!("err"), json!({"err": null}));
    rejects(&p, "t-result", json!({"maybe": 1}));
    round_trip(&p, "t-flags", json!(["read", "exec", "read"]), json!(["read", "exec"]));
    round_trip(&p, "t-flags", json!([]), json!([]));
    rejects(&p, "t-flags", json!(["fly"]));
}

#[test]
fn argument_lists() {
    let p = params();
    let two = &p["two"];
    assert_eq!(args_to_vals(&[json!("x")], two).unwrap(), vec![Val::String("x".into()), Val::Option(None)]);
    assert_eq!(args_to_vals(&[json!("x"), json!(3)], two).unwrap()[1], Val::Option(Some(Box::new(Val::U32(3)))));
    let e = args_to_vals(&[], two).unwrap_err();
    assert_eq!(e.to_string(), "missing argument `a` of type string");
    let e = args_to_vals(&[json!(1)], two).unwrap_err();
    assert_eq!(e.to_string(), "argument `a` expected string, found number 1");
    let e = args_to_vals(&[json!("x"), json!(1), json!(2)], two).unwrap_err();
    assert!(matches!(e, ArgsError::TooMany { given: 3, takes: 2 }));
    let e = args_to_vals(&[json!({"order_id": 1, "items": [{"sku": 5, "qty": 1}], "express": true})], &p["t-record"]).unwrap_err();
    assert_eq!(e.to_string(), "argument `x` at `.items[0].sku`: expected string, found number 5");
}

#[test]
fn payload_decoding() {
    assert_eq!(decode_payload(Some(b"json/plain"), b"{\"a\":1}").unwrap(), json!({"a": 1}));
    assert_eq!(decode_payload(Some(b"binary/null"), b"").unwrap(), json!(null));
    assert!(decode_payload(Some(b"json/plain"), b"{").unwrap_err().contains("invalid JSON"));
    assert!(decode_payload(Some(b"json/protobuf"), b"").unwrap_err().contains("json/plain"));
}

/// Random JSON against every type: conversions either succeed and round
/// trip through JSON again, or fail with an error. Never a panic.
#[test]
fn no_panic_on_arbitrary_json() {
    let p = params();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    fn arbitrary(next: &mut dyn FnMut() -> u64, depth: u32) -> Json {
        let keys = ["sku", "qty", "note", "order_id", "items", "express", "circle", "square", "nothing", "ok", "err", "red", "read"];
        match next() % if depth > 3 { 6 } else { 8 } {
            0 => Json::Null,
            1 => json!(next().is_multiple_of(2)),
            2 => json!((next() as i64) >> (next() % 64)),
            3 => json!(f64::from_bits(next()).is_finite().then_some(f64::from_bits(next()))),
            4 => json!(keys[(next() % keys.len() as u64) as usize]),
            5 => json!(next().to_string()),
            6 => Json::Array((0..next() % 4).map(|_| arbitrary(next, depth + 1)).collect()),
            _ => Json::Object(
                (0..next() % 4).map(|_| (keys[(next() % keys.len() as u64) as usize].to_owned(), arbitrary(next, depth + 1))).collect(),
            ),
        }
    }
    let mut accepted = 0;
    for _ in 0..20_000 {
        let input = arbitrary(&mut next, 0);
        for params in p.values() {
            for (_, t) in params {
                if let Ok(v) = json_to_val(&input, t, "") {
                    accepted += 1;
                    let out = val_to_json(&v);
                    let again = json_to_val(&out, t, "").expect("output of val_to_json reads back");
                    assert_eq!(val_to_json(&again), out);
                }
            }
        }
    }
    assert!(accepted > 1000, "the generator should hit valid values too ({accepted})");
}

mod no_panic {
    //! Arbitrary JSON (any client can send any payload) against every WIT
    //! type: the converter answers or refuses, never panics.
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn all() -> &'static HashMap<String, Vec<(String, Type)>> {
        static ALL: OnceLock<HashMap<String, Vec<(String, Type)>>> = OnceLock::new();
        ALL.get_or_init(params)
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z-]{0,8}",
            prop::sample::select(vec!["sku", "qty", "note", "order-id", "items", "express", "circle", "square", "nothing", "ok", "err"])
                .prop_map(str::to_owned),
        ]
    }

    pub(crate) fn json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<u64>().prop_map(Json::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
            ".{0,12}".prop_map(Json::from),
            prop::sample::select(vec!["red", "dark-green", "read", "exec", "18446744073709551616", "-1"]).prop_map(Json::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
                prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_json_against_every_wit_type_never_panics(value in json(), extra in json()) {
            for params in all().values() {
                if let Ok(val) = json_to_val(&value, &params[0].1, "") {
                    let _ = val_to_json(&val);
                }
                let _ = args_to_vals(&[value.clone(), extra.clone()], params);
                let _ = args_to_vals(std::slice::from_ref(&value), params);
            }
            let _ = decode_payload(Some(b"json/plain"), value.to_string().as_bytes());
        }

        #[test]
        fn arbitrary_bytes_as_a_payload_never_panic(data in prop::collection::vec(any::<u8>(), 0..64), encoding in ".{0,16}") {
            let _ = decode_payload(Some(encoding.as_bytes()), &data);
            let _ = decode_payload(None, &data);
        }
    }
}
