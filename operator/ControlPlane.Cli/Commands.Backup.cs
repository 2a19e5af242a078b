using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using ControlPlane.Api.V1Alpha1;
using k8s.Models;

namespace ControlPlane.Cli;

/// <summary>A Backup as `backup list` shows it.</summary>
public sealed record BackupRow(string Namespace, string Name, string Plan, string Phase, DateTime? StartedAt, DateTime? CompletedAt, long? SizeBytes, string? Sha256, string? Reason);

public static partial class Commands
{
    static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    static string Suffix() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));

    static Option<TimeSpan> TimeoutOption() => new("--timeout") { Description = "How long to follow it before giving up (it goes on in the cluster)", DefaultValueFactory = _ => TimeSpan.FromMinutes(10) };

    static Option<bool> NoWaitOption() => new("--no-wait") { Description = "Create it and return; do not follow it" };

    public static Command Backup(Globals g)
    {
        var cmd = new Command("backup", "On-demand backups and the list of backups.");
        var plan = new Argument<string>("plan") { Description = "The BackupPlan (in -n <workspace>)" };
        var timeout = TimeoutOption();
        var noWait = NoWaitOption();
        var now = new Command("now", "Back up now: creates a Backup of the plan and follows it to completion (Pending → Running → Completed).") { plan, timeout, noWait };
        now.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var ns = kube.Namespace;
            var bp = await kube.GetAsync<BackupPlan>(ns, r.GetValue(plan)!, ct);
            var name = $"{(bp.Metadata.Name.Length > 40 ? bp.Metadata.Name[..40] : bp.Metadata.Name)}-manual-{Suffix()}";
            var created = await kube.CreateAsync(ns, new Api.V1Alpha1.Backup
            {
                ApiVersion = ApiGroup.ApiVersion,
                Metadata = new V1ObjectMeta { Name = name },
                Spec = new BackupSpec { BackupPlan = bp.Metadata.Name },
            }, ct);
            Console.WriteLine($"backup.controlplane.io/{created.Metadata.Name} created in {ns} (plan {bp.Metadata.Name})");
            if (r.GetValue(noWait)) return 0;
            var done = await FollowAsync(r.GetValue(timeout), ct, async () => await kube.GetAsync<Api.V1Alpha1.Backup>(ns, name, ct),
                b => b.Status?.Phase?.ToString() ?? "Pending", b => b.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Message,
                b => b.Status?.Phase is BackupPhase.Completed or BackupPhase.Failed);
            if (done.Status?.Phase != BackupPhase.Completed)
            {
                var ready = done.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
                throw new CliError($"backup {name} {done.Status?.Phase?.ToString() ?? "did not finish"}: {ready?.Reason}: {ready?.Message}");
            }

            Console.WriteLine($"completed: {done.Status.Size ?? done.Status.SizeBytes?.ToString(CultureInfo.InvariantCulture) + " bytes"}, sha256 {done.Status.Sha256}, key {done.Status.Key}");
            return 0;
        });
        cmd.Add(now);

        var all = new Option<bool>("--all-namespaces", "-A") { Description = "Every namespace you may list" };
        var ofPlan = new Option<string?>("--plan") { Description = "Only this plan's backups" };
        var output = Globals.OutputOption();
        var list = new Command("list", "Backups, newest first: plan, phase, start, completion, size, sha256.") { all, ofPlan, output };
        list.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var backups = await kube.ListAsync<Api.V1Alpha1.Backup>(r.GetValue(all) ? null : kube.Namespace, ct);
            var rows = backups.Where(b => r.GetValue(ofPlan) is not { } p || b.Spec.BackupPlan == p)
                .OrderByDescending(b => b.Status?.StartedAt ?? b.Metadata.CreationTimestamp)
                .Select(b => new BackupRow(b.Metadata.NamespaceProperty, b.Metadata.Name, b.Spec.BackupPlan, b.Status?.Phase?.ToString() ?? "Pending",
                    b.Status?.StartedAt, b.Status?.CompletedAt, b.Status?.SizeBytes, b.Status?.Sha256, b.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Reason))
                .ToList();
            if (r.GetValue(output) is { } format)
            {
                Console.Write(Output.Render(rows, format));
                return 0;
            }

            if (rows.Count == 0)
            {
                Console.WriteLine(r.GetValue(all) ? "no backups" : $"no backups in namespace {kube.Namespace}");
                return 0;
            }

            Console.Write(Output.Table(["NAMESPACE", "NAME", "PLAN", "PHASE", "STARTED", "COMPLETED", "SIZE", "SHA256"],
                rows.Select(b => (IReadOnlyList<string>)[b.Namespace, b.Name, b.Plan, b.Phase, Output.Time(b.StartedAt), Output.Time(b.CompletedAt),
                    b.SizeBytes?.ToString(CultureInfo.InvariantCulture) ?? "-", b.Sha256 is { Length: > 12 } h ? h[..12] : b.Sha256 ?? "-"])));
            return 0;
        });
        cmd.Add(list);
        return cmd;
    }

    public static Command Restore(Globals g)
    {
        var workspace = new Argument<string>("workspace") { Description = "The workspace whose database is restored (the Restore is created there)" };
        var backup = new Option<string?>("--backup") { Description = "Restore this Backup, by name" };
        var toTime = new Option<string?>("--to-time") { Description = "Restore the newest backup at or before this time (RFC 3339, e.g. 2026-01-04T10:00:00Z); it must be inside the plan's recoverability window" };
        var into = new Option<string?>("--into") { Description = "Restore into this new database (inside the workspace's own database prefix); without it the restore is in place (the replaced database is kept under a recorded name) and needs approval" };
        var plan = new Option<string?>("--plan") { Description = "The BackupPlan (default: the workspace's only one)" };
        var reason = new Option<string?>("--reason") { Description = "Why (kept with the Restore)" };
        var timeout = TimeoutOption();
        var noWait = NoWaitOption();
        var cmd = new Command("restore", "Restore a workspace's database from a backup, by name or by time: creates a Restore as you and follows it to completion (waiting for approvals when it needs them).")
        {
            workspace, backup, toTime, into, plan, reason, timeout, noWait,
        };
        cmd.Validators.Add(v =>
        {
            if ((v.GetValue(backup) is null) == (v.GetValue(toTime) is null)) v.AddError("give exactly one of --backup NAME or --to-time T");
        });
        cmd.SetAction(async (r, ct) =>
        {
            using var kube = g.Connect(r);
            var ns = r.GetValue(workspace)!;
            var spec = new RestoreSpec { Reason = r.GetValue(reason), Into = r.GetValue(into) is { } db ? new RestoreTarget { Database = db } : new RestoreTarget { InPlace = true } };
            if (r.GetValue(backup) is { } backupName)
            {
                var b = await kube.GetAsync<Api.V1Alpha1.Backup>(ns, backupName, ct);
                if (r.GetValue(plan) is { } p && p != b.Spec.BackupPlan) throw new CliError($"--backup {backupName} belongs to BackupPlan {b.Spec.BackupPlan}, not --plan {p}");
                if (b.Status?.Phase != BackupPhase.Completed) throw new CliError($"--backup {backupName} is {b.Status?.Phase?.ToString() ?? "Pending"}: only a Completed backup can be restored");
                spec.BackupPlan = b.Spec.BackupPlan;
                spec.Backup = backupName;
            }
            else
            {
                var text = r.GetValue(toTime)!;
                if (!DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var at))
                {
                    throw new CliError($"--to-time: \"{text}\" is not a time (RFC 3339, e.g. 2026-01-04T10:00:00Z)");
                }

                var bp = await PlanOfAsync(kube, ns, r.GetValue(plan), ct);
                var first = bp.Status?.FirstRecoverabilityPoint
                    ?? throw new CliError($"--to-time: BackupPlan {bp.Metadata.Name} in {ns} has no completed backup yet: nothing to restore (kubectl controlplane backup now {bp.Metadata.Name} -n {ns})");
                var nowUtc = DateTime.UtcNow;
                if (at < first.ToUniversalTime() || at > nowUtc)
                {
                    throw new CliError($"--to-time {Output.Time(at)} is outside the recoverability window of BackupPlan {bp.Metadata.Name}: {Output.Time(first)} to now ({Output.Time(nowUtc)})");
                }

                spec.BackupPlan = bp.Metadata.Name;
                spec.TargetTime = at;
            }

            var name = $"{(spec.BackupPlan.Length > 40 ? spec.BackupPlan[..40] : spec.BackupPlan)}-restore-{Suffix()}";
            await kube.CreateAsync(ns, new Api.V1Alpha1.Restore { ApiVersion = ApiGroup.ApiVersion, Metadata = new V1ObjectMeta { Name = name }, Spec = spec }, ct);
            Console.WriteLine($"restore.controlplane.io/{name} created in {ns} ({(spec.Backup is { } bk ? "backup " + bk : "newest backup at or before " + Output.Time(spec.TargetTime))} of plan {spec.BackupPlan}, {(spec.Into.InPlace == true ? "in place" : "into " + spec.Into.Database)})");
            if (r.GetValue(noWait)) return 0;
            var done = await FollowAsync(r.GetValue(timeout), ct, async () => await kube.GetAsync<Api.V1Alpha1.Restore>(ns, name, ct),
                x => x.Status?.Phase?.ToString() ?? "Pending",
                x => x.Status?.Phase == RestorePhase.AwaitingApproval
                    ? (x.Status.Conditions?.FirstOrDefault(c => c.Type == RestoreConditions.Approved)?.Message + $" (kubectl controlplane approve restore/{name} -n {ns}, by someone else)")
                    : x.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready")?.Message,
                x => x.Status?.Phase is RestorePhase.Completed or RestorePhase.Failed);
            if (done.Status?.Phase != RestorePhase.Completed)
            {
                var ready = done.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
                throw new CliError($"restore {name} {done.Status?.Phase?.ToString() ?? "did not finish"}: {ready?.Reason}: {ready?.Message}");
            }

            Console.WriteLine($"completed: backup {done.Status.Backup} restored into {done.Status.Database}{(done.Status.ReplacedDatabase is { } old ? $" (the replaced database is kept as {old})" : "")}"
                + (done.Status.SmokeCheck is { } smoke ? $"; smoke check {(smoke.Passed ? "passed" : "FAILED")}: {smoke.Tables} table(s)" : ""));
            return 0;
        });
        return cmd;
    }

    static async Task<BackupPlan> PlanOfAsync(Kube kube, string ns, string? name, CancellationToken ct)
    {
        if (name is not null) return await kube.GetAsync<BackupPlan>(ns, name, ct);
        var plans = await kube.ListAsync<BackupPlan>(ns, ct);
        return plans.Count switch
        {
            1 => plans[0],
            0 => throw new CliError($"workspace {ns} has no BackupPlan (wrong workspace? a restore needs a plan's backups)"),
            _ => throw new CliError($"workspace {ns} has {plans.Count} BackupPlans ({string.Join(", ", plans.Select(p => p.Metadata.Name))}): name one with --plan"),
        };
    }

    /// <summary>Polls an object until it is done or the timeout passes, printing each new phase and message (progress).</summary>
    static async Task<T> FollowAsync<T>(TimeSpan timeout, CancellationToken ct, Func<Task<T>> read, Func<T, string> phase, Func<T, string?> message, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow + timeout;
        string? shown = null;
        while (true)
        {
            var current = await read();
            var line = $"  {phase(current)}{(message(current) is { Length: > 0 } m ? ": " + m : "")}";
            if (line != shown)
            {
                Console.WriteLine(line);
                shown = line;
            }

            if (done(current)) return current;
            if (DateTime.UtcNow >= deadline) throw new CliError($"still {phase(current)} after {timeout}: it goes on in the cluster (follow it with kubectl get -w)");
            await Task.Delay(Poll, ct);
        }
    }
}
