"""What compliance officers read: explain, audit show, subject, report, RoPA, policy."""
