using ControlPlane.Api.V1Alpha1;
using ControlPlane.Operator.Configuration;
using ControlPlane.Operator.Policy;
using Xunit;

namespace ControlPlane.Tests;

/// <summary>Placement: a workspace's region, what a region allows and where its backups go (Policy/Placement.cs).</summary>
public sealed class PlacementTests
{
    static Tenant TenantIn(string region) => new() { Metadata = new() { Name = "acme" }, Spec = new TenantSpec { Region = region } };

    static Workspace WorkspaceIn(string? region) => new() { Metadata = new() { Name = "acme-dev" }, Spec = new WorkspaceSpec { Tenant = "acme", Region = region } };

    static ControlPlaneOptions Options()
    {
        var options = new ControlPlaneOptions();
        options.Regions["us"] = new RegionOptions { Database = "Host=us" };
        options.Regions["eu"] = new RegionOptions { Database = "Host=eu" };
        options.Regions["apac"] = new RegionOptions(); // declared, no server yet
        return options;
    }

    [Theory]
    [InlineData("us", "eu", "us")]
    [InlineData(null, "eu", "eu")]
    [InlineData("", "eu", "eu")]
    public void AWorkspace_IsInItsOwnRegion_ElseItsTenants(string? own, string tenant, string expected)
    {
        Assert.Equal(expected, Placement.WorkspaceRegion(WorkspaceIn(own), TenantIn(tenant)));
    }

    [Fact]
    public void AWorkspace_WithoutRegionOrKnownTenant_HasNoRegion()
    {
        Assert.Equal("", Placement.WorkspaceRegion(WorkspaceIn(null), null));
        Assert.Equal("us", Placement.WorkspaceRegion(WorkspaceIn("us"), null));
    }

    [Fact]
    public void AWorkspace_IsPinnedToItsTenantsRegion_Exactly()
    {
        Assert.True(Placement.IsTenantRegion("eu", TenantIn("eu")));
        Assert.False(Placement.IsTenantRegion("us", TenantIn("eu")));
        Assert.False(Placement.IsTenantRegion("EU", TenantIn("eu")));
    }

    [Fact]
    public void ARegion_IsDeclared_AndHasAServer_OnlyWhenConfiguredSo()
    {
        var options = Options();
        Assert.True(Placement.Region(options, "eu") is { Declared: true, HasServer: true, Server: "Host=eu" });
        Assert.True(Placement.Region(options, "EU").HasServer); // configuration keys are case-insensitive
        Assert.True(Placement.Region(options, "apac") is { Declared: true, HasServer: false, Server: null });
        Assert.True(Placement.Region(options, "mars") is { Declared: false, HasServer: false, Server: null });
        options.Regions["apac"].Database = "  ";
        Assert.False(Placement.Region(options, "apac").HasServer);
    }

    [Fact]
    public void ANewTenant_MustNameARegionWithAServer()
    {
        var options = Options();
        Assert.Equal(["eu", "us"], Placement.ServedRegions(options));
        Assert.Null(Placement.UnservedTenantRegion(options, "eu"));
        Assert.Null(Placement.UnservedTenantRegion(options, "US"));
        Assert.Equal("spec.region: \"apac\" is not a configured region (configured: eu, us)", Placement.UnservedTenantRegion(options, "apac"));
        Assert.Equal("spec.region: \"mars\" is not a configured region (configured: none)", Placement.UnservedTenantRegion(new ControlPlaneOptions(), "mars"));
    }

    [Fact]
    public void TheTenantReconciler_KeepsATenant_WhoseRegionIsDeclared()
    {
        var options = Options();
        Assert.Null(Placement.UndeclaredTenantRegion(options, "apac"));
        Assert.Null(Placement.UndeclaredTenantRegion(options, "eu"));
        Assert.Equal("spec.region: \"mars\" is not a configured region (configured: apac, eu, us)", Placement.UndeclaredTenantRegion(options, "mars"));
    }

    [Fact]
    public void Extensions_AreTheRegionsAllowlist_ElseTheTrustedOnes()
    {
        var options = Options();
        options.Regions["eu"].AllowedExtensions = ["postgis"];
        Assert.Equal(["postgis"], Placement.Region(options, "eu").AllowedExtensions);
        Assert.Equal(RegionOptions.DefaultAllowedExtensions, Placement.Region(options, "us").AllowedExtensions);
        // A region not configured (a workspace whose tenant is not known yet): the trusted ones, never more.
        Assert.Equal(RegionOptions.DefaultAllowedExtensions, Placement.Region(options, "").AllowedExtensions);
        Assert.Equal([(0, "plpython3u")], Placement.Region(options, "mars").DisallowedExtensions(["plpython3u", "pgcrypto"]));
        Assert.Equal([(1, "pgcrypto")], Placement.Region(options, "eu").DisallowedExtensions(["postgis", "pgcrypto"]));
    }

    [Fact]
    public void Backups_GoOnlyToTheRegionsOwnCompleteStorage()
    {
        var options = Options();
        options.Regions["eu"].BackupStorage = new BackupStorageOptions { Endpoint = "http://s3.eu", Bucket = "backups", CredentialsSecret = "s3" };
        Assert.Equal(new PlatformBackupStorage("http://s3.eu", "backups", "", "s3", "us-east-1"), Placement.Region(options, "eu").BackupStorage);
        options.Regions["us"].BackupStorage = new BackupStorageOptions { Endpoint = "http://s3.us", Bucket = "backups" };
        Assert.Null(Placement.Region(options, "us").BackupStorage);
        Assert.Null(Placement.Region(options, "mars").BackupStorage);
        Assert.Equal("region us has no backup storage configured (ControlPlane:Regions:us:BackupStorage: Endpoint, Bucket and CredentialsSecret)",
            Placement.Region(options, "us").NoBackupStorage);
    }
}
