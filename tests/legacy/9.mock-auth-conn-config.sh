#!/bin/bash
# CB-Spider test/mock-test/9.mock-auth-conn-config.sh: 9.mock-conn-config.sh with Basic auth default:default.
# Only change from CB-Spider: the server address is one variable (default localhost:1024).
SPIDER_SERVER=${SPIDER_SERVER:-localhost:1024}

# for Cloud Driver Info
curl -sX POST http://$SPIDER_SERVER/spider/driver -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{"DriverName":"mock-driver01","ProviderName":"MOCK","DriverLibFileName":"mock-driver-v1.0.so"}' | json_pp

# for Cloud Credential Info
curl -sX POST http://$SPIDER_SERVER/spider/credential -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{"CredentialName":"mock-credential01","ProviderName":"MOCK","KeyValueInfoList":[{"Key":"MockName","Value":"mock_name00"}]}' | json_pp

# for Cloud Region Info
curl -sX POST http://$SPIDER_SERVER/spider/region -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{"RegionName":"mock-region01","ProviderName":"MOCK","KeyValueInfoList":[{"Key":"Region","Value":"default"}]}' | json_pp

# for Cloud Connection Config Info
curl -sX POST http://$SPIDER_SERVER/spider/connectionconfig -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{"ConfigName":"mock-config01","ProviderName":"MOCK","DriverName":"mock-driver01","CredentialName":"mock-credential01","RegionName":"mock-region01"}' | json_pp
