#!/bin/bash
# CB-Spider test/mock-test/mock-auth_full_test.sh: the MOCK full test with Basic auth default:default, body variants only (23 calls, contract 15.3).
# Only changes from CB-Spider: the server address is one variable (default localhost:1024) and
# 'sleep 1' is 'sleep $SLEEP' (default 1).
SPIDER_SERVER=${SPIDER_SERVER:-localhost:1024}
SLEEP=${SLEEP:-1}

echo "####################################################################"
echo "## Mock Test Scripts for CB-Spider - 2020.04.22."
echo "##   1. VPC: Create -> Add-Subnet -> List -> Get"
echo "##   2. SecurityGroup: Create -> List -> Get"
echo "##   3. KeyPair: Create -> List -> Get"
echo "##   4. VM: StartVM -> List -> Get -> ListStatus -> GetStatus -> Suspend -> Resume -> Reboot"
echo "##   5. Delete: VM -> KeyPair -> SecurityGroup -> Subnet -> VPC"
echo "####################################################################"

echo "####################################################################"
echo "## 1. VPC: Create -> Add-Subnet -> List -> Get"
echo "####################################################################"
curl -sX POST http://$SPIDER_SERVER/spider/vpc -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01", "ReqInfo": { "Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16", "SubnetInfoList": [ { "Name": "subnet-01", "IPv4_CIDR": "192.168.1.0/24"} ] } }' |json_pp
curl -sX POST http://$SPIDER_SERVER/spider/vpc/vpc-01/subnet -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01", "ReqInfo": { "Name": "subnet-02", "IPv4_CIDR": "192.168.2.0/24" } }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/vpc -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/vpc/vpc-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp

echo "####################################################################"
echo "## 2. SecurityGroup: Create -> List -> Get"
echo "####################################################################"
curl -sX POST http://$SPIDER_SERVER/spider/securitygroup -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01", "ReqInfo": { "Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [ {"FromPort": "1", "ToPort" : "65535", "IPProtocol" : "tcp", "Direction" : "inbound", "CIDR" : "0.0.0.0/0"} ] } }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/securitygroup -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/securitygroup/sg-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp

echo "####################################################################"
echo "## 3. KeyPair: Create -> List -> Get"
echo "####################################################################"
curl -sX POST http://$SPIDER_SERVER/spider/keypair -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01", "ReqInfo": { "Name": "keypair-01" } }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/keypair -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/keypair/keypair-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp

echo "####################################################################"
echo "## 4. VM: StartVM -> List -> Get -> ListStatus -> GetStatus -> Suspend -> Resume -> Reboot"
echo "####################################################################"
curl -sX POST http://$SPIDER_SERVER/spider/vm -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01", "ReqInfo": { "Name": "vm-01", "ImageName": "mock-vmimage-01", "VPCName": "vpc-01", "SubnetName": "subnet-01", "SecurityGroupNames": [ "sg-01" ], "VMSpecName": "mock-vmspec-01", "KeyPairName": "keypair-01"} }' |json_pp
sleep $SLEEP
curl -sX GET http://$SPIDER_SERVER/spider/vm -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/vm/vm-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/vmstatus -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET http://$SPIDER_SERVER/spider/vmstatus/vm-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET "http://$SPIDER_SERVER/spider/controlvm/vm-01?action=suspend" -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET "http://$SPIDER_SERVER/spider/controlvm/vm-01?action=resume" -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX GET "http://$SPIDER_SERVER/spider/controlvm/vm-01?action=reboot" -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp

echo "####################################################################"
echo "## 5. Delete: VM -> KeyPair -> SecurityGroup -> Subnet -> VPC"
echo "####################################################################"
curl -sX DELETE http://$SPIDER_SERVER/spider/vm/vm-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
sleep $SLEEP
curl -sX DELETE http://$SPIDER_SERVER/spider/keypair/keypair-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX DELETE http://$SPIDER_SERVER/spider/securitygroup/sg-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX DELETE http://$SPIDER_SERVER/spider/vpc/vpc-01/subnet/subnet-02 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
curl -sX DELETE http://$SPIDER_SERVER/spider/vpc/vpc-01 -H "Authorization: Basic $(echo -n default:default | base64)" -H 'Content-Type: application/json' -d '{ "ConnectionName": "mock-config01" }' |json_pp
