//! The batch example's one activity: process an item.

wit_bindgen::generate!({
    world: "caisson-examples:batch-activities/batch-activities",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;

struct BatchActivities;

impl Guest for BatchActivities {
    fn process_item(item: String) -> Result<ItemResult, ApplicationError> {
        if item.trim().is_empty() || item.starts_with("bad") {
            return Err(act::fatal("InvalidItem", format!("cannot process `{item}`")));
        }
        // Stand-in for real work (resize an image, index a document...).
        std::thread::sleep(std::time::Duration::from_millis(200));
        let normalized = item.trim().to_lowercase().replace(char::is_whitespace, "-");
        let hash = normalized.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        act::log(&format!("processed {item}"));
        Ok(ItemResult { chars: normalized.chars().count() as u32, checksum: format!("{hash:016x}"), normalized, item })
    }
}

export!(BatchActivities);
