package dev.mcl.election;

/**
 * What only the leader may do. Runs on the campaign's executor while this candidate leads; when
 * leadership ends the library interrupts it (its Future is cancelled) and {@link
 * Leadership#isLeader()} turns false, and it waits for the task to return before it runs it again
 * on the next LEADER. Return when interrupted or when {@code isLeader()} is false.
 */
@FunctionalInterface
public interface LeaderTask {
  void run(Leadership leadership) throws Exception;
}
