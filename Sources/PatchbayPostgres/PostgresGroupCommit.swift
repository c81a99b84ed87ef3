import Foundation
import Logging
import PatchbayCore
import PostgresNIO
import Synchronization

/// Lets concurrent intake writes share PostgreSQL transactions, as the SQLite group committer
/// does: under load, each commit (one WAL flush) carries up to `maxBatch` events instead of one.
/// Up to `maxConcurrentBatches` transactions run at once, so a quiet server commits each event
/// alone without waiting for company.
///
/// Each write runs in its own savepoint: one failing (or losing a deadlock, which is retried)
/// does not undo the others. Writes in a batch run in the order of their `order` key (the
/// maintenance), so two batches lock maintenances in the same order and never wait on each other
/// in a circle. Callers resume only after the commit that holds their write.
final class PostgresGroupCommitter: Sendable {
    private struct Job: Sendable {
        let order: String
        let work: @Sendable (PostgresConnection) async throws -> any Sendable
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var pending: [Job] = []
        var flushing = 0
    }

    private let state = Mutex(State())
    let maxBatch: Int
    let maxConcurrentBatches: Int

    init(maxBatch: Int = 64, maxConcurrentBatches: Int) {
        self.maxBatch = maxBatch
        self.maxConcurrentBatches = max(1, maxConcurrentBatches)
    }

    func write<T: Sendable>(order: String, store: PostgresStore, _ work: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T
    {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let job = Job(order: order, work: { try await work($0) }, continuation: continuation)
            let startFlushing = state.withLock { state -> Bool in
                state.pending.append(job)
                guard state.flushing < maxConcurrentBatches else { return false }
                state.flushing += 1
                return true
            }
            if startFlushing {
                Task { await self.flush(store: store) }
            }
        }
        return value as! T
    }

    private func flush(store: PostgresStore) async {
        while true {
            let batch = state.withLock { state -> [Job] in
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.flushing -= 1 }
                return batch
            }
            if batch.isEmpty { return }
            let ordered = batch.sorted { $0.order < $1.order }
            let logger = store.logger
            do {
                let results = try await store.transaction { connection -> [Result<any Sendable, StoreError>] in
                    var results: [Result<any Sendable, StoreError>] = []
                    for job in ordered {
                        let result = await Self.runInSavepoint(job, on: connection, logger: logger)
                        // The connection failed (not the write): the transaction is lost, and the
                        // batch with it; nothing more is sent on that connection.
                        if case .failure(let error) = result, connection.isClosed { throw error }
                        results.append(result)
                    }
                    return results
                }
                for (job, result) in zip(ordered, results) {
                    job.continuation.resume(with: result.mapError { $0 as any Error })
                }
            } catch {
                for job in ordered { job.continuation.resume(throwing: PostgresStore.storeError(error)) }
            }
        }
    }

    /// One write in its own savepoint; a deadlock or serialization failure rolls the savepoint
    /// back (its locks with it) and runs the write again, a few times.
    private static func runInSavepoint(_ job: Job, on connection: PostgresConnection, logger: Logger) async -> Result<any Sendable, StoreError> {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await PostgresStore.rows("SAVEPOINT intake_write", on: connection, logger: logger)
                let value = try await job.work(connection)
                try await PostgresStore.rows("RELEASE SAVEPOINT intake_write", on: connection, logger: logger)
                return .success(value)
            } catch {
                do {
                    try await PostgresStore.rows("ROLLBACK TO SAVEPOINT intake_write", on: connection, logger: logger)
                    try await PostgresStore.rows("RELEASE SAVEPOINT intake_write", on: connection, logger: logger)
                } catch {
                    // The connection itself failed: the transaction is lost, and the batch with it.
                    return .failure(PostgresStore.storeError(error))
                }
                if attempt < 3, PostgresStore.isRetryable(error) { continue }
                return .failure(PostgresStore.storeError(error))
            }
        }
    }
}
