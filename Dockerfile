# Operator image. Build: make docker-build
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props ControlPlane.sln ./
COPY operator/ operator/
RUN dotnet publish operator/ControlPlane.Operator.csproj -c Release -o /out

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /out ./
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["dotnet", "ControlPlane.Operator.dll"]
