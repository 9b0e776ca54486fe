//! How much memory a record holds: what the memory budget counts.

use std::mem::size_of;
use std::sync::Arc;

/// The bytes a record holds, for the memory budget.
///
/// Weigh what the record keeps alive, heap included: a `Vec<u8>` of a megabyte weighs
/// a megabyte, not 24 bytes. Implemented for the common types; implement it for your
/// own, or give a closure with [`Builder::weigh_with`](crate::Builder::weigh_with).
///
/// ```
/// use brigade_runtime::Weigh;
///
/// struct Row { id: u64, payload: Vec<u8> }
///
/// impl Weigh for Row {
///     fn weigh(&self) -> u64 {
///         8 + self.payload.weigh()
///     }
/// }
///
/// assert_eq!(Row { id: 1, payload: vec![0; 1000] }.weigh(), 1032);
/// ```
pub trait Weigh {
    /// Bytes this record holds.
    fn weigh(&self) -> u64;
}

/// A weighing function shared by the workers of a stage.
pub(crate) type Weigher<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// The weigher that uses `T`'s [`Weigh`] implementation.
pub(crate) fn by_trait<T: Weigh + 'static>() -> Weigher<T> {
    Arc::new(|record: &T| record.weigh())
}

macro_rules! weigh_by_size {
    ($($t:ty),*) => {
        $(impl Weigh for $t {
            fn weigh(&self) -> u64 {
                size_of::<$t>() as u64
            }
        })*
    };
}

weigh_by_size!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64
);

impl Weigh for String {
    fn weigh(&self) -> u64 {
        (size_of::<String>() + self.capacity()) as u64
    }
}

impl Weigh for &'static str {
    fn weigh(&self) -> u64 {
        size_of::<&str>() as u64
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    /// The vector itself, its spare capacity, and each element's weight.
    fn weigh(&self) -> u64 {
        let spare = (self.capacity() - self.len()) * size_of::<T>();
        (size_of::<Vec<T>>() + spare) as u64 + self.iter().map(Weigh::weigh).sum::<u64>()
    }
}

impl<T: Weigh + ?Sized> Weigh for Box<T> {
    fn weigh(&self) -> u64 {
        size_of::<Box<T>>() as u64 + (**self).weigh()
    }
}

impl Weigh for [u8] {
    fn weigh(&self) -> u64 {
        self.len() as u64
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn weigh(&self) -> u64 {
        match self {
            Some(value) => value.weigh().max(size_of::<Self>() as u64),
            None => size_of::<Self>() as u64,
        }
    }
}

impl<A: Weigh, B: Weigh> Weigh for (A, B) {
    fn weigh(&self) -> u64 {
        self.0.weigh() + self.1.weigh()
    }
}

impl<A: Weigh, B: Weigh, C: Weigh> Weigh for (A, B, C) {
    fn weigh(&self) -> u64 {
        self.0.weigh() + self.1.weigh() + self.2.weigh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_counts() {
        assert_eq!(vec![0u8; 1000].weigh(), 24 + 1000);
        let mut s = String::with_capacity(100);
        s.push('x');
        assert_eq!(s.weigh(), 24 + 100);
        assert_eq!((1u64, vec![1u8; 10]).weigh(), 8 + 24 + 10);
        assert_eq!(Box::<[u8]>::from(vec![0u8; 50]).weigh(), 16 + 50);
    }
}
