//! rpm's sqlite schema (rpm 4.16-4.20, `lib/backend/sqlite.c`): the SQL rpm runs to create its
//! tables and indexes, in the order it runs it, and the check that a database read from an
//! image holds nothing else.
//!
//! When rpm opens a database for writing it opens `Packages`, then every index tag in
//! `dbiTags` order (lib/rpmdb.c), and each open (`sqlite_Open`) runs `init_table` then
//! `init_index`: the table, then `'<t>_key_idx'` when the key is a string, then
//! `'<t>_hnum_idx'` when the tag is an array. sqlite adds `sqlite_sequence` with `Packages`
//! (AUTOINCREMENT), and `sqlite_stat1` (and `sqlite_stat4` where sqlite is built with it) on
//! rpm's closing `PRAGMA optimize`. Nothing else: no view, no trigger, no other table, index or
//! column, in any of rpm 4.16-4.20 (the statements did not change between them).
//!
//! sqlite keeps a `CREATE` statement's text from the object's name on, prefixed with
//! `CREATE TABLE ` / `CREATE INDEX ` (so without rpm's `IF NOT EXISTS`): a database rpm wrote
//! holds exactly [`SchemaObject::stored_sql`] for each object, and the check compares the text
//! byte for byte. That is the whole defence against SQL in an image: any difference (a CHECK, a
//! DEFAULT, a generated column, another type) is a refusal, decided from `sqlite_master` alone,
//! before any statement touches a table of the database (the columns [`check`] asks sqlite
//! for, from the parsed schema, only word a refusal).

use super::rpm::{
    RpmDbError, INDEXES, TAG_GROUP, TAG_INSTALLTID, TAG_NAME, TAG_SHA1HEADER, TAG_SIGMD5,
};

/// What a schema object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `CREATE TABLE`.
    Table,
    /// `CREATE INDEX`.
    Index,
}

/// A table or index rpm creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaObject {
    /// Table or index.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The table it is (a table) or indexes (an index).
    pub table: &'static str,
    /// The statement rpm runs, byte for byte (rpm's `sqlexec` format with its values filled in).
    pub sql: String,
}

impl SchemaObject {
    /// The text sqlite keeps in `sqlite_master` for it: rpm's statement without its
    /// `IF NOT EXISTS`.
    pub fn stored_sql(&self) -> String {
        self.sql.replacen(" IF NOT EXISTS", "", 1)
    }
}

/// The index tags whose value is one item, not an array (`rpmTagGetReturnType` is not
/// `RPM_ARRAY_RETURN_TYPE`): rpm gives their tables no `hnum` index.
const SCALAR_TAGS: [u32; 5] = [
    TAG_NAME,
    TAG_GROUP,
    TAG_INSTALLTID,
    TAG_SIGMD5,
    TAG_SHA1HEADER,
];

/// rpm's tables and indexes, in the order rpm creates them.
pub fn rpm_objects() -> Vec<SchemaObject> {
    let mut out = vec![SchemaObject {
        kind: Kind::Table,
        name: "Packages".into(),
        table: "Packages",
        sql: "CREATE TABLE IF NOT EXISTS 'Packages' (\
              hnum INTEGER PRIMARY KEY AUTOINCREMENT,\
              blob BLOB NOT NULL)"
            .into(),
    }];
    for (table, tag, text) in INDEXES {
        let keytype = if text { "TEXT" } else { "BLOB" };
        out.push(SchemaObject {
            kind: Kind::Table,
            name: table.into(),
            table,
            sql: format!(
                "CREATE TABLE IF NOT EXISTS '{table}' (\
                 key '{keytype}' NOT NULL, \
                 hnum INTEGER NOT NULL, \
                 idx INTEGER NOT NULL, \
                 FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))"
            ),
        });
        let mut index = |column: &str| {
            out.push(SchemaObject {
                kind: Kind::Index,
                name: format!("{table}_{column}_idx"),
                table,
                sql: format!(
                    "CREATE INDEX IF NOT EXISTS '{table}_{column}_idx' ON '{table}'({column} ASC)"
                ),
            })
        };
        if text {
            index("key");
        }
        if !SCALAR_TAGS.contains(&tag) {
            index("hnum");
        }
    }
    out
}

/// The tables sqlite itself creates in an rpm database, as sqlite stores them.
const SQLITE_TABLES: [(&str, &str); 3] = [
    ("sqlite_sequence", "CREATE TABLE sqlite_sequence(name,seq)"),
    ("sqlite_stat1", "CREATE TABLE sqlite_stat1(tbl,idx,stat)"),
    (
        "sqlite_stat4",
        "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)",
    ),
];

/// One row of a database's `sqlite_master`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterRow {
    /// `type`: table, index, view or trigger.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `tbl_name`: the table an index or trigger belongs to.
    pub table: String,
    /// `rootpage`: 0 for views, triggers and virtual tables.
    pub rootpage: i64,
    /// `sql`; `None` for the automatic indexes of UNIQUE and PRIMARY KEY constraints.
    pub sql: Option<String>,
}

/// One column as `PRAGMA table_xinfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its declared type.
    pub decl_type: String,
    /// NOT NULL.
    pub not_null: bool,
    /// The text of its DEFAULT expression.
    pub default: Option<String>,
    /// Its position in the primary key (0: not part of it).
    pub pk: i64,
    /// 0: an ordinary column; 2 and 3: generated (VIRTUAL, STORED).
    pub hidden: i64,
}

/// Checks a database's schema (its `sqlite_master` rows) against rpm's. `Ok` when every row
/// is an object rpm or sqlite creates in an rpm database, with rpm's or sqlite's SQL, and
/// `Packages` is there. `columns(table)` describes a table rpm also has but defined otherwise
/// (only asked to word the refusal; it reads the parsed schema, never the table).
pub fn check(
    rows: &[MasterRow],
    mut columns: impl FnMut(&str) -> Result<Vec<Column>, RpmDbError>,
    rpm_columns: impl Fn(&str) -> Vec<Column>,
) -> Result<(), RpmDbError> {
    // Not rpm's at all: say so rather than name its first table. (Something else named
    // Packages, a view say, is named by the loop.)
    if !rows.iter().any(|r| r.name == "Packages") {
        return Err(RpmDbError::NotRpm);
    }
    let rpm = rpm_objects();
    let foreign = |what: String| Err(RpmDbError::ForeignSchema { what });
    for row in rows {
        let name = quoted(&row.name);
        let on = quoted(&row.table);
        let sql = row.sql.as_deref();
        match row.kind.as_str() {
            "view" => return foreign(format!("a view {name}")),
            "trigger" => return foreign(format!("a trigger {name} on {on}")),
            "table" | "index" => {}
            other => return foreign(format!("a schema entry {name} of type {}", quoted(other))),
        }
        let kind = if row.kind == "table" {
            Kind::Table
        } else {
            Kind::Index
        };
        if kind == Kind::Table && row.rootpage == 0 {
            return foreign(format!("a virtual table {name}"));
        }
        if let Some((_, stored)) = SQLITE_TABLES.iter().find(|(n, _)| *n == row.name) {
            if kind == Kind::Table && row.table == row.name && sql == Some(*stored) {
                continue;
            }
            return foreign(format!("a table {name} that is not sqlite's own"));
        }
        let Some(obj) = rpm.iter().find(|o| o.name == row.name && o.kind == kind) else {
            return foreign(match kind {
                Kind::Table => format!("a table {name} that rpm does not create"),
                Kind::Index => format!("an index {name} on {on} that rpm does not create"),
            });
        };
        if row.table == obj.table && sql == Some(obj.stored_sql().as_str()) {
            continue;
        }
        if kind == Kind::Index {
            return foreign(format!(
                "an index {name} on {on} defined otherwise than rpm's ({})",
                abbreviated(sql.unwrap_or(""))
            ));
        }
        return foreign(table_difference(
            obj.table,
            &columns(obj.table)?,
            &rpm_columns(obj.table),
            sql.unwrap_or(""),
        ));
    }
    Ok(())
}

/// What differs between a table rpm has and the database's table of that name, in words.
fn table_difference(table: &str, got: &[Column], rpm: &[Column], sql: &str) -> String {
    if let Some(c) = got.iter().find(|c| !rpm.iter().any(|r| r.name == c.name)) {
        let generated = if c.hidden >= 2 { "generated " } else { "" };
        return format!(
            "a {generated}column {} of table {table} that rpm does not create",
            quoted(&c.name)
        );
    }
    if let Some(r) = rpm.iter().find(|r| !got.iter().any(|c| c.name == r.name)) {
        return format!("a table {table} without rpm's column {}", r.name);
    }
    for r in rpm {
        let Some(c) = got.iter().find(|c| c.name == r.name) else {
            continue;
        };
        if c.hidden >= 2 {
            return format!(
                "a column {} of table {table} computed by an expression (a generated column)",
                r.name
            );
        }
        if let Some(d) = &c.default {
            return format!(
                "a default value for column {} of table {table} ({})",
                r.name,
                abbreviated(d)
            );
        }
        if c != r {
            return format!(
                "a column {} of table {table} declared otherwise than rpm's ({}{}{})",
                r.name,
                quoted(&c.decl_type),
                if c.not_null { " NOT NULL" } else { "" },
                if c.pk > 0 { " PRIMARY KEY" } else { "" },
            );
        }
    }
    format!(
        "a table {table} with constraints rpm does not create ({})",
        abbreviated(sql)
    )
}

/// A name or text from the database, quoted and escaped (it may hold anything, newlines
/// included) and cut to a readable length.
fn quoted(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// SQL text from the database, for a message: quoted, escaped, cut.
fn abbreviated(sql: &str) -> String {
    const MAX: usize = 160;
    match sql.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &sql[..cut]),
        None => format!("{sql:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_objects_follow_rpm_order_and_sql() {
        let objs = rpm_objects();
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            &names[..8],
            [
                "Packages",
                "Name",
                "Name_key_idx",
                "Basenames",
                "Basenames_key_idx",
                "Basenames_hnum_idx",
                "Group",
                "Group_key_idx"
            ]
        );
        // 1 + 18 tables, a key index on the 16 string tags, an hnum index on the 13 arrays.
        assert_eq!(objs.len(), 1 + 18 + 16 + 13);
        let installtid = objs.iter().find(|o| o.name == "Installtid").unwrap();
        assert_eq!(
            installtid.stored_sql(),
            "CREATE TABLE 'Installtid' (key 'BLOB' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum))"
        );
        assert!(!names.contains(&"Installtid_hnum_idx") && !names.contains(&"Sigmd5_key_idx"));
        assert_eq!(
            objs[0].stored_sql(),
            "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)"
        );
    }

    #[test]
    fn quoted_names_are_escaped_and_cut() {
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        assert_eq!(quoted(&"x".repeat(100)), format!("{:?}...", "x".repeat(64)));
    }
}
