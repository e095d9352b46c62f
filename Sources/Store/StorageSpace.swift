import GRDB

/// A write the database could not take because the disk holding it is full (SQLite's `SQLITE_FULL`). Nothing of that
/// write was stored (SQLite rolls its transaction back) and the request can be sent again once space is freed, so
/// each service answers it as a temporary refusal in its own form, never as a 500.
public enum StorageSpace {
    /// Whether `error` is the database refusing to grow.
    public static func isExhausted(_ error: any Error) -> Bool {
        (error as? DatabaseError)?.resultCode == .SQLITE_FULL
    }

    /// The `Retry-After` (seconds) the refusals carry: long enough for an operator to free space.
    public static let retryAfterSeconds = 30

    /// What the refusals say, in every service's form.
    public static let message =
        "The sandbox's disk is full: nothing of this request was stored. Free some space on the data folder's disk, then send it again."
}
