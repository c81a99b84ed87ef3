import Foundation
import GRDB
import PatchbayCore
import Synchronization

/// Lets concurrent writers share one commit. SQLite with `synchronous=FULL` pays an fsync per
/// transaction (~6k/s here) but writes ~150k rows/s in batches, so each write waits for the batch
/// in progress to commit, then every write queued meanwhile goes out in the next transaction.
/// Each write runs in its own savepoint: one failing does not undo the others. Callers resume only
/// after the commit that holds their write.
final class GroupCommitter: Sendable {
    private struct Job: Sendable {
        let work: @Sendable (Database) throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var pending: [Job] = []
        var flushing = false
    }

    private let writer: any DatabaseWriter
    private let state = Mutex(State())
    private let maxBatch: Int

    init(writer: any DatabaseWriter, maxBatch: Int = 500) {
        self.writer = writer
        self.maxBatch = maxBatch
    }

    func write<T: Sendable>(_ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let job = Job(work: { try work($0) }, continuation: continuation)
            let startFlushing = state.withLock { state -> Bool in
                state.pending.append(job)
                guard !state.flushing else { return false }
                state.flushing = true
                return true
            }
            if startFlushing {
                Task { await self.flush() }
            }
        }
        return value as! T
    }

    private func flush() async {
        while true {
            let batch = state.withLock { state -> [Job] in
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let results = try await writer.write { db -> [Result<any Sendable, any Error>] in
                    batch.map { job in
                        var result: Result<any Sendable, any Error> = .failure(CancellationError())
                        do {
                            try db.inSavepoint {
                                result = .success(try job.work(db))
                                return .commit
                            }
                        } catch {
                            result = .failure(error)
                        }
                        return result
                    }
                }
                for (job, result) in zip(batch, results) {
                    job.continuation.resume(with: result.mapError(StoreError.mapping))
                }
            } catch {
                for job in batch { job.continuation.resume(throwing: StoreError.mapping(error)) }
            }
        }
    }
}

extension StoreError {
    /// SQLite's answer as the contract's: a busy or locked database is worth retrying; anything
    /// else SQLite reports (a full disk, a constraint, corruption) is permanent. Errors that are
    /// not SQLite's (a caller's own, thrown inside a write) pass through unchanged.
    static func mapping(_ error: any Error) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        let message = error.message ?? "SQLite error \(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: return StoreError.transient(message)
        default: return StoreError.permanent(message)
        }
    }
}
