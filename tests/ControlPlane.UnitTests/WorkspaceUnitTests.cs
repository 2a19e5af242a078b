using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Kinds;
using ControlPlane.Operator.Policy;
using ControlPlane.Operator.Store;
using Xunit;
using k8s.Models;

namespace ControlPlane.Tests;

public sealed class WorkspaceUnitTests
{
    static Workspace Ws(string name, string tenant, string? cpu, int secondsAfterEpoch, bool provisioned = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, CreationTimestamp = new DateTime(2026, 1, 1, 0, 0, secondsAfterEpoch, DateTimeKind.Utc) },
        Spec = new WorkspaceSpec { Tenant = tenant, Quota = cpu is null ? null : new WorkspaceQuota { Cpu = new ResourceQuantity(cpu) } },
        Status = provisioned ? new WorkspaceStatus { Namespace = name, AdmittedAt = $"2026-01-01T00:00:{secondsAfterEpoch:00}.0000000Z" } : null,
    };

    static Tenant TenantWith(string cpu, int? max = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = "acme" },
        Spec = new TenantSpec { Region = "eu", Quota = new TenantQuota { Cpu = new ResourceQuantity(cpu), MaxWorkspaces = max } },
    };

    [Fact]
    public void DefaultDeny_AllowsEgressToTheTenantsApprovedCidrs_Only_InAStableOrder()
    {
        var ws = new Workspace { Metadata = new V1ObjectMeta { Name = "acme-dev", Uid = "u" } };
        Assert.Single(WorkspaceResources.DefaultDeny(ws).Spec.Egress); // DNS only
        Assert.Single(WorkspaceResources.DefaultDeny(ws, []).Spec.Egress);

        var policy = WorkspaceResources.DefaultDeny(ws, ["198.51.100.0/24", "not-a-cidr", "10.1.0.0/16", "198.51.100.0/24"]);
        Assert.Null(policy.Spec.Ingress); // ingress stays denied
        Assert.Equal(2, policy.Spec.Egress.Count);
        var approved = policy.Spec.Egress[1];
        Assert.Null(approved.Ports); // every port of those ranges
        Assert.Equal(["10.1.0.0/16", "198.51.100.0/24"], approved.To.Select(p => p.IpBlock.Cidr));
        Assert.All(approved.To, p => Assert.Null(p.IpBlock.Except));
        Assert.Equal(k8s.KubernetesJson.Serialize(policy), k8s.KubernetesJson.Serialize(WorkspaceResources.DefaultDeny(ws, ["10.1.0.0/16", "198.51.100.0/24"])));
    }

    [Fact]
    public void TenantNetworkCidrs_ThatDoNotParse_AreRefused_NamingTheFieldAndIndex()
    {
        var tenant = new Tenant
        {
            Metadata = new V1ObjectMeta { Name = "acme" },
            Spec = new TenantSpec { Region = "eu", Network = new TenantNetwork { AllowedIngressCIDRs = ["203.0.113.0/24"], ApprovedEgressCIDRs = ["198.51.100.0/24", "198.51.100.300/32"] } },
        };
        var problem = Assert.Single(SpecRules.Tenant(tenant));
        Assert.Contains("spec.network.approvedEgressCIDRs[1]", problem);
        Assert.Contains("198.51.100.300/32", problem);
        tenant.Spec.Network.ApprovedEgressCIDRs = ["198.51.100.0/24"];
        Assert.Empty(SpecRules.Tenant(tenant));
    }

    [Fact]
    public void Quota_IsGrantedInCreationOrder_AndCappedAtWhatRemains()
    {
        var tenant = TenantWith("10");
        var all = new[] { Ws("a", "acme", "6", 0), Ws("b", "acme", "6", 1), Ws("c", "acme", "500m", 2), Ws("x", "other", "100", 0) };
        var a = Quota.AllocateQuota(all[0], tenant, all);
        var b = Quota.AllocateQuota(all[1], tenant, all);
        var c = Quota.AllocateQuota(all[2], tenant, all);
        Assert.False(a.Exceeded);
        Assert.Equal("6", a.Granted["cpu"].CanonicalizeString());
        Assert.True(b.Exceeded);
        Assert.Equal("4", b.Granted["cpu"].CanonicalizeString());
        Assert.Contains("requested 6", b.Shortfalls.Single());
        Assert.True(c.Exceeded);
        Assert.Equal("0", c.Granted["cpu"].CanonicalizeString());
    }

    [Fact]
    public void AdmittedWorkspaces_KeepTheirPlace_AheadOfNewcomers()
    {
        var tenant = TenantWith("10", max: 1);
        var old = Ws("zzz", "acme", "8", 5, provisioned: true);
        var newcomer = Ws("aaa", "acme", "8", 5);
        Assert.False(Quota.AllocateQuota(old, tenant, [old, newcomer]).Exceeded);
        var grant = Quota.AllocateQuota(newcomer, tenant, [old, newcomer]);
        Assert.True(grant.OverWorkspaceLimit);
        Assert.Equal("2", grant.Granted["cpu"].CanonicalizeString());
    }

    [Fact]
    public void RoleBindings_OnePerMember_PlusOwnersAsWorkspaceAdmin()
    {
        var tenant = new Tenant { Metadata = new V1ObjectMeta { Name = "acme" }, Spec = new TenantSpec { Owners = [new Subject { Kind = "Group", Name = "acme-admins" }] } };
        var ws = Ws("acme-dev", "acme", null, 0);
        ws.Spec.Members = [new WorkspaceMember { Kind = "User", Name = "bob", Role = "Operator" }, new WorkspaceMember { Kind = "ServiceAccount", Name = "ci/deployer", Role = "IntegrationAdmin" }];
        var bindings = WorkspaceResources.RoleBindings(ws, tenant);
        Assert.Equal(3, bindings.Count);
        Assert.Contains(bindings, b => b.RoleRef.Name == "controlplane:workspace:workspace-admin" && b.Subjects[0].Kind == "Group");
        var sa = bindings.Single(b => b.Subjects[0].Kind == "ServiceAccount");
        Assert.Equal(("ci", "deployer"), (sa.Subjects[0].NamespaceProperty, sa.Subjects[0].Name));
        Assert.Equal("controlplane:workspace:integration-admin", sa.RoleRef.Name);
        Assert.All(bindings, b => Assert.Equal("acme-dev", b.Metadata.NamespaceProperty));
    }

    [Theory]
    [InlineData("openai", null, "sk-proj-abcdefghijklmnopqrstuvwxyz", true)]
    [InlineData("openai", null, "sk-ant-abcdefghijklmnopqrstuvwxyz", false)]
    [InlineData("openai", null, "hello", false)]
    [InlineData("anthropic", null, "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", true)]
    [InlineData("anthropic", null, "sk-proj-abcdefghijklmnopqrstuvwxyz", false)]
    [InlineData("azure-openai", null, "0123456789abcdef0123456789abcdef", false)]
    [InlineData("azure-openai", "http://x.openai.azure.com", "0123456789abcdef0123456789abcdef", false)]
    [InlineData("azure-openai", "https://x.openai.azure.com", "0123456789abcdef0123456789abcdef", true)]
    public void ProviderKeys_AreValidatedByFormat_WithoutEchoingTheValue(string provider, string? endpoint, string value, bool valid)
    {
        var error = ProviderKeys.Validate(2, provider, endpoint, value);
        Assert.Equal(valid, error is null);
        if (error is not null)
        {
            Assert.Contains("spec.providerKeys[2]", error);
            Assert.DoesNotContain(value, error);
        }
    }

    [Fact]
    public void KeyVault_SealsWithAFreshDataKey_AndOpensOnlyWithTheSameKek()
    {
        var kek = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var vault = new KeyVault(kek);
        var a = vault.Seal("sk-secret");
        var b = vault.Seal("sk-secret");
        Assert.NotEqual(a.Ciphertext, b.Ciphertext);
        Assert.NotEqual(a.WrappedKey, b.WrappedKey);
        Assert.Equal("sk-secret", vault.Open(a));
        var other = new KeyVault(Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => other.Open(a with { KekId = other.KekId }));
        var tampered = a with { Ciphertext = a.Ciphertext.Select(x => (byte)(x ^ 1)).ToArray() };
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => vault.Open(tampered));
        Assert.Throws<InvalidOperationException>(() => new KeyVault(Convert.ToBase64String(new byte[16])));
    }

    [Theory]
    [InlineData("acme-dev", "ws_acme_dev")]
    [InlineData("a", "ws_a")]
    public void DatabaseNames_UseUnderscores(string workspace, string database) => Assert.Equal(database, RegionDatabases.DatabaseName(workspace));

    [Fact]
    public void LongDatabaseNames_StayWithinPostgresLimit_AndStayDistinct()
    {
        var a = RegionDatabases.DatabaseName(new string('a', 62) + "-1");
        var b = RegionDatabases.DatabaseName(new string('a', 62) + "-2");
        Assert.True(a.Length <= 63);
        Assert.NotEqual(a, b);
    }
}
