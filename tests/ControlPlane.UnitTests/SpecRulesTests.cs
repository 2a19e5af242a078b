using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class SpecRulesTests
{
    static Workspace Ws(string name, string? cpu = null, int second = 0, params WorkspaceMember[] members) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, CreationTimestamp = new DateTime(2026, 1, 1, 0, 0, second, DateTimeKind.Utc) },
        Spec = new WorkspaceSpec { Tenant = "acme", Quota = cpu is null ? null : new WorkspaceQuota { Cpu = new ResourceQuantity(cpu) }, Members = [.. members] },
    };

    static Tenant Acme(string cpu) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec { Region = "eu", Quota = new TenantQuota { Cpu = new ResourceQuantity(cpu) } },
    };

    [Theory]
    [InlineData("dot.ws")]
    [InlineData("Upper")]
    [InlineData("-lead")]
    [InlineData("trail-")]
    [InlineData("under_score")]
    [InlineData("")]
    public void Names_ThatAreNotDnsLabels_AreRefused_NamingMetadataName(string name)
    {
        var problem = SpecRules.ObjectName(name);
        Assert.NotNull(problem);
        Assert.StartsWith("metadata.name:", problem);
    }

    [Fact]
    public void Names_LongerThan63_AreRefused_AndLabelsAccepted()
    {
        Assert.Contains("at most 63", SpecRules.ObjectName(new string('a', 100)));
        Assert.NotNull(SpecRules.ObjectName(new string('a', 64)));
        Assert.Null(SpecRules.ObjectName(new string('a', 63)));
        Assert.Null(SpecRules.ObjectName("acme-dev-1"));
    }

    [Theory]
    [InlineData("ServiceAccount", "x/Bad_Name", "name \"Bad_Name\"")]
    [InlineData("ServiceAccount", "Bad/ok", "namespace \"Bad\"")]
    [InlineData("ServiceAccount", "noslash", "namespace/name")]
    [InlineData("ServiceAccount", "a/b/c", "namespace/name")]
    [InlineData("User", " ", "must not be empty")]
    [InlineData("User", "bob\u0001@example.com", "control characters")]
    [InlineData("Group", "ops\nadmins", "control characters")]
    public void MemberNames_ThatCannotBeBound_AreRefused_NamingTheField(string kind, string name, string rule)
    {
        var problems = SpecRules.Members([new WorkspaceMember { Kind = "User", Name = "ok@example.com", Role = "Operator" }, new WorkspaceMember { Kind = kind, Name = name, Role = "Operator" }]).ToList();
        var problem = Assert.Single(problems);
        Assert.StartsWith("spec.members[1].name:", problem);
        Assert.Contains(rule, problem);
    }

    [Fact]
    public void MemberNames_AreBounded_AndGoodOnesPass()
    {
        Assert.Contains("at most 256", SpecRules.MemberName(0, new WorkspaceMember { Kind = "User", Name = new string('u', 300), Role = "Operator" }));
        Assert.Empty(SpecRules.Members(
        [
            new WorkspaceMember { Kind = "ServiceAccount", Name = "ci/deployer.bot", Role = "Operator" },
            new WorkspaceMember { Kind = "User", Name = "Bob Example <bob@example.com>", Role = "Auditor" },
            new WorkspaceMember { Kind = "Group", Name = "acme-auditors", Role = "Auditor" },
            new WorkspaceMember { Kind = "User", Name = "иван@пример.рф", Role = "Auditor" },
            new WorkspaceMember { Kind = "User", Name = "CN=Alice Smith,OU=Ops", Role = "Auditor" },
        ]));
    }

    [Fact]
    public void DuplicateMembers_AreRefused_ButTheSameSubjectInTwoRolesIsNot()
    {
        var bob = new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Operator" };
        var problem = Assert.Single(SpecRules.Members([bob, new WorkspaceMember { Kind = "User", Name = "bob@example.com", Role = "Auditor" }, bob]));
        Assert.StartsWith("spec.members[2]: duplicates spec.members[0]", problem);
    }

    [Theory]
    [InlineData("-10", "cpu")]
    [InlineData("1e30", "cpu")]
    [InlineData("1000001", "cpu")]
    [InlineData("9Ei", "memory")]
    [InlineData("8Ei", "storage")]
    [InlineData("-1Gi", "memory")]
    public void Quantities_NegativeOrPastTheirBound_AreRefused_NamingFieldAndBound(string value, string resource)
    {
        var problem = SpecRules.Quantity($"spec.quota.{resource}", resource, new ResourceQuantity(value), value);
        Assert.NotNull(problem);
        Assert.StartsWith($"spec.quota.{resource}: \"{value}\"", problem);
        Assert.Contains(resource == "cpu" ? "at most 1000000 cores" : "at most 9223372036854775807 bytes", problem);
    }

    [Theory]
    [InlineData("0", "cpu")]
    [InlineData("500m", "cpu")]
    [InlineData("1000000", "cpu")]
    [InlineData("7Ei", "memory")]
    [InlineData("1Ti", "storage")]
    public void Quantities_WithinBounds_Pass(string value, string resource) =>
        Assert.Null(SpecRules.Quantity($"spec.quota.{resource}", resource, new ResourceQuantity(value)));

    [Fact]
    public void DuplicateProviderKeys_AreRefused_NamingTheLaterOne()
    {
        ProviderKey Key(string provider) => new() { Provider = provider, SecretRef = new SecretKeyReference { Name = provider, Key = "apiKey" } };
        var problem = Assert.Single(SpecRules.ProviderKeys([Key("openai"), Key("anthropic"), Key("openai")]));
        Assert.StartsWith("spec.providerKeys[2].provider: \"openai\" is already listed at spec.providerKeys[0]", problem);
        Assert.Empty(SpecRules.ProviderKeys([Key("openai"), Key("anthropic")]));
    }

    [Fact]
    public void Ledger_NeverThrows_OnHugeOrNegativeStoredQuantities_AndCountsThemAsZero()
    {
        var tenant = Acme("8");
        var all = new[] { Ws("neg", "-10", 0), Ws("huge", "1e30", 1), Ws("late", "8", 2), Ws("later", "1", 3) };
        Assert.False(Quota.FitsEveryone(tenant, all));
        var grants = Quota.AllocateAll(tenant, all);
        foreach (var bad in new[] { "neg", "huge" })
        {
            Assert.Equal(0m, grants[bad].Granted["cpu"].ToDecimal());
            Assert.Contains("spec.quota.cpu", Assert.Single(grants[bad].Invalid));
            Assert.True(grants[bad].Exceeded);
        }

        // The negative ask did not make room: the tenant's 8 cores are all that is granted.
        Assert.Equal(8m, grants["late"].Granted["cpu"].ToDecimal());
        Assert.Equal(0m, grants["later"].Granted["cpu"].ToDecimal());
        Assert.Equal(8m, grants.Values.Sum(g => g.Granted["cpu"].ToDecimal()));

        var full = Quota.FullGrant(Ws("huge", "1e30"), tenant);
        Assert.Equal(0m, full.Granted["cpu"].ToDecimal());
        Assert.NotEmpty(full.Invalid);
    }

    [Fact]
    public void Ledger_ATenantQuotaOutOfBounds_GrantsNothing_WithoutThrowing()
    {
        var grants = Quota.AllocateAll(Acme("1e30"), [Ws("a", "2")]);
        Assert.Equal(0m, grants["a"].Granted["cpu"].ToDecimal());
        Assert.Contains("tenant acme's spec.quota.cpu", Assert.Single(grants["a"].Invalid));
        Assert.False(Quota.FitsEveryone(Acme("1e30"), [Ws("a", "2")]));
    }

    [Fact]
    public void Sums_Saturate_InsteadOfOverflowing()
    {
        Assert.Equal(decimal.MaxValue, SpecRules.Add(decimal.MaxValue, 1));
        Assert.Equal(3m, SpecRules.Add(1, 2));
    }
}
