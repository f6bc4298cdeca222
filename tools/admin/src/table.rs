//! Readable tables for people (`--json` prints the API's JSON instead).

use comfy_table::{presets::UTF8_BORDERS_ONLY, ContentArrangement, Table};
use serde_json::Value;

/// A table with `header` and one row per item of `rows`.
pub fn print(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// A two-column table of `(field, value)`.
pub fn fields(rows: Vec<(String, String)>) {
    print(
        &["field", "value"],
        rows.into_iter().map(|(f, v)| vec![f, v]).collect(),
    );
}

/// A JSON value as table text: strings bare, the rest as JSON, nothing for null.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
