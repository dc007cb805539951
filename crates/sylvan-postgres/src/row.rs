//! [`Row`], and the text conversions of parameters ([`ToParam`]) and
//! columns ([`FromText`]).
//!
//! Parameters and results travel in PostgreSQL's text format: the server
//! parses each parameter as the type it infers for `$n` (write `$1::int`
//! where it cannot tell), and every column arrives as its text form.

use std::sync::Arc;

use crate::Error;

/// One result row: the text of each column (`None` for SQL `NULL`).
///
/// # Examples
///
/// ```no_run
/// let mut c = sylvan_postgres::Config::new().connect()?;
/// let rows = c.query("SELECT 1 AS one, NULL::text AS nothing, true AS yes", &[])?;
/// let r = &rows[0];
/// assert_eq!(r.get::<i64>("one")?, 1);
/// assert_eq!(r.get::<Option<String>>(1)?, None);
/// assert!(r.get::<bool>("yes")?);
/// assert_eq!(r.columns(), ["one", "nothing", "yes"]);
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub(crate) columns: Arc<[String]>,
    pub(crate) values: Vec<Option<String>>,
}

/// A column index: a position or a name.
///
/// # Examples
///
/// ```no_run
/// # let mut c = sylvan_postgres::Config::new().connect()?;
/// let row = &c.query("SELECT 7 AS n", &[])?[0];
/// assert_eq!(row.get::<i32>(0)?, row.get::<i32>("n")?);
/// # Ok::<(), sylvan_postgres::Error>(())
/// ```
pub trait ColumnIndex {
    /// The position of this column in `columns`, if present.
    fn position(&self, columns: &[String]) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
}

impl Row {
    /// The column names, in order.
    ///
    /// # Examples
    ///
    /// See [`Row`].
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// How many columns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let mut c = sylvan_postgres::Config::new().connect()?;
    /// assert_eq!(c.query("SELECT 1, 2", &[])?[0].len(), 2);
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no columns.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let mut c = sylvan_postgres::Config::new().connect()?;
    /// assert!(!c.query("SELECT 1", &[])?[0].is_empty());
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw text of a column; `None` for `NULL` or no such column.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let mut c = sylvan_postgres::Config::new().connect()?;
    /// assert_eq!(c.query("SELECT 'x'", &[])?[0].text(0), Some("x"));
    /// # Ok::<(), sylvan_postgres::Error>(())
    /// ```
    pub fn text(&self, idx: impl ColumnIndex) -> Option<&str> {
        let i = idx.position(&self.columns)?;
        self.values[i].as_deref()
    }

    /// Converts a column from its text form.
    ///
    /// # Examples
    ///
    /// See [`Row`].
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] naming the column when it does not exist, is
    /// `NULL` for a non-`Option` type, or does not parse as `T`.
    pub fn get<T: FromText>(&self, idx: impl ColumnIndex) -> Result<T, Error> {
        let Some(i) = idx.position(&self.columns) else {
            return Err(Error::Protocol(format!(
                "no such column (columns: {:?})",
                self.columns
            )));
        };
        T::from_text(self.values[i].as_deref())
            .map_err(|why| Error::Protocol(format!("column {} ({:?}): {why}", i, self.columns[i])))
    }
}

/// A value that can be read from a column's text form.
///
/// # Examples
///
/// ```
/// use sylvan_postgres::FromText;
///
/// assert_eq!(i32::from_text(Some("42")), Ok(42));
/// assert_eq!(bool::from_text(Some("t")), Ok(true));
/// assert_eq!(Option::<i32>::from_text(None), Ok(None));
/// assert!(i32::from_text(None).is_err());
/// ```
pub trait FromText: Sized {
    /// Parses `text` (`None` is SQL `NULL`); the error says why not.
    fn from_text(text: Option<&str>) -> Result<Self, String>;
}

fn not_null(text: Option<&str>) -> Result<&str, String> {
    text.ok_or_else(|| "is NULL".to_owned())
}

macro_rules! from_str_text {
    ($($t:ty),*) => {$(
        impl FromText for $t {
            fn from_text(text: Option<&str>) -> Result<Self, String> {
                let s = not_null(text)?;
                s.parse().map_err(|e| format!("{s:?} is not a {}: {e}", stringify!($t)))
            }
        }
    )*};
}
from_str_text!(i16, i32, i64, u32, u64, f32, f64, String);

impl FromText for bool {
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        match not_null(text)? {
            "t" | "true" => Ok(true),
            "f" | "false" => Ok(false),
            s => Err(format!("{s:?} is not a bool")),
        }
    }
}

impl<T: FromText> FromText for Option<T> {
    fn from_text(text: Option<&str>) -> Result<Self, String> {
        text.map(|s| T::from_text(Some(s))).transpose()
    }
}

/// A value that can be sent as a query parameter, in text form.
///
/// # Examples
///
/// ```
/// use sylvan_postgres::ToParam;
///
/// assert_eq!(42.to_text().as_deref(), Some("42"));
/// assert_eq!(true.to_text().as_deref(), Some("t"));
/// assert_eq!(None::<i32>.to_text(), None); // NULL
/// ```
pub trait ToParam {
    /// The text form, or `None` for SQL `NULL`.
    fn to_text(&self) -> Option<String>;
}

macro_rules! display_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_text(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
display_param!(i16, i32, i64, u32, u64, f32, f64, String, str);

impl ToParam for bool {
    fn to_text(&self) -> Option<String> {
        Some(if *self { "t" } else { "f" }.to_owned())
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_text(&self) -> Option<String> {
        (**self).to_text()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_text(&self) -> Option<String> {
        self.as_ref().and_then(ToParam::to_text)
    }
}
