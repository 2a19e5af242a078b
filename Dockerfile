# Operator image. Build: make docker-build. Multi-stage: the SDK publishes, the runtime image runs it
# as a non-root user (the chart adds a read-only root filesystem). The PostgreSQL client is there for
# backups (pg_dump/pg_restore). A test (InstallTests) publishes exactly as below and starts the result.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props ControlPlane.sln ./
COPY operator/ operator/
RUN dotnet publish operator/ControlPlane.Operator/ControlPlane.Operator.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /out ./
USER 65532:65532
EXPOSE 8081 9443
ENTRYPOINT ["dotnet", "ControlPlane.Operator.dll"]
