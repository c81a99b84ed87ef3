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
/// A batch is one transaction; a deadlock or serialization failure runs it again whole, and a
/// write that fails for itself sends every write of its batch through a transaction of its own,
/// so one refused write does not fail the others. Writes in a batch run in the order of their `order` key (the
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
            let refusal = WriteRefusal()
            do {
                let values = try await store.transaction { connection -> [any Sendable] in
                    var values: [any Sendable] = []
                    for job in ordered {
                        do {
                            values.append(try await job.work(connection))
                        } catch {
                            if PostgresStore.isRefusalOfOneWrite(error) { refusal.happened.store(true, ordering: .relaxed) }
                            throw error
                        }
                    }
                    return values
                }
                for (job, value) in zip(ordered, values) { job.continuation.resume(returning: value) }
            } catch {
                let failure = PostgresStore.storeError(error)
                guard ordered.count > 1, refusal.happened.load(ordering: .relaxed) else {
                    // The database is away: every write shares the answer (each alone would
                    // wait out the pool's acquire timeout in turn).
                    for job in ordered { job.continuation.resume(throwing: failure) }
                    continue
                }
                // The server refused one write (a value it rejects, a lock or statement timeout,
                // a deadlock still there after the retries): the batch rolled back, and each
                // write runs again alone, so only that one fails. Savepoints around each write
                // would do the same at two round trips per event on every batch.
                for job in ordered {
                    do {
                        job.continuation.resume(returning: try await store.transaction { try await job.work($0) })
                    } catch {
                        job.continuation.resume(throwing: PostgresStore.storeError(error))
                    }
                }
            }
        }
    }
}

/// Whether the server refused a write of the batch (set inside its transaction).
final class WriteRefusal: Sendable {
    let happened = Atomic<Bool>(false)
}
